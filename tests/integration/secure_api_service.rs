//! The SecureApiService controller against the emulators, on the seed's service: hardened
//! workloads fed by immutable snapshots, one rollout per rotation, rollback of a stalled rollout,
//! steady state, and clean deletion.

use crate::support::PROJECT;
use crate::support::cluster::TestCluster;
use crate::support::conditions::{condition, ready, wait_condition};
use crate::support::operator::{Operator, cluster_with_operator, emulator_with_operator};
use crate::support::wait::{DEADLINE, wait_for};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Secret, Service, ServiceAccount};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use secure_api_operator::api::conditions::types;
use secure_api_operator::api::{SecretRef, SecureApiService, SecureApiServiceStatus};
use secure_api_operator::metrics::Controller as ControllerKind;
use secure_api_testbed::emulator::gcp::VersionState;
use secure_api_testbed::emulator::kube::{DeploymentSimulation, KubeEmulator};
use serde_json::{Value, json};

const DB_V1: &str = r#"{"host":"db.example.com","port":5432,"username":"api_user","password":"pw-1"}"#;
const DB_V2: &str = r#"{"host":"db.example.com","port":5432,"username":"api_user","password":"pw-2"}"#;
const DB_V3: &str = r#"{"host":"db.example.com","port":5432,"username":"api_user","password":"pw-3"}"#;

/// A fresh cluster with the CRDs, the operator, and the seed (optionally with autoRollback).
async fn seeded(test: &str, auto_rollback: bool) -> (TestCluster, Operator) {
    let (cluster, operator) = cluster_with_operator(test).await;
    seed(&cluster, &operator, auto_rollback).await;
    (cluster, operator)
}

/// On the emulator only (`None` on a real cluster, and the test skips): rollouts complete at once,
/// and the seeded service (optionally with autoRollback) is Ready.
async fn seeded_and_ready(test: &str, auto_rollback: bool) -> Option<(TestCluster, KubeEmulator, Operator)> {
    let (cluster, kube, operator) = emulator_with_operator(test).await?;
    let services: Api<SecureApiService> = cluster.api();
    kube.set_deployment_simulation(DeploymentSimulation::Complete);
    seed(&cluster, &operator, auto_rollback).await;
    wait_condition(&services, "secure-api", ready().is("True", "RolloutComplete")).await;
    Some((cluster, kube, operator))
}

/// The seed's secrets and SecretRefs, and the seed's service (optionally with autoRollback).
async fn seed(cluster: &TestCluster, operator: &Operator, auto_rollback: bool) {
    operator.gcp.add_version(PROJECT, "api-config-db", DB_V1.as_bytes());
    operator.gcp.add_version(
        PROJECT,
        "api-config-keys",
        br#"{"external_api_key":"k","jwt_secret":"j","encryption_key":"e"}"#,
    );
    operator.gcp.add_version(
        PROJECT,
        "api-config-config",
        br#"{"debug_mode":false,"rate_limit":1000,"cache_ttl":3600,"log_level":"INFO"}"#,
    );
    let refs: Api<SecretRef> = cluster.api();
    for (name, secret) in [("db", "api-config-db"), ("keys", "api-config-keys"), ("config", "api-config-config")] {
        let object: SecretRef = serde_json::from_value(json!({
            "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecretRef", "metadata": { "name": name },
            "spec": { "secret": secret, "format": "json", "refreshInterval": "1s" },
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        refs.create(&PostParams::default(), &object).await.unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let service: SecureApiService = serde_json::from_value(json!({
        "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecureApiService", "metadata": { "name": "secure-api" },
        "spec": {
            "image": "example.com/secure-api:1.0", "port": 8080, "replicas": 2,
            "resources": { "requests": { "cpu": "1", "memory": "512Mi" }, "limits": { "cpu": "1", "memory": "512Mi" } },
            "healthCheck": { "path": "/health" },
            "serviceAccount": { "gcpServiceAccount": "secure-api-sa@demo-project.iam.gserviceaccount.com" },
            "secretEnv": [
                { "name": "DB_HOST", "secretRef": "db", "key": "host" },
                { "name": "DB_PORT", "secretRef": "db", "key": "port" },
                { "name": "DB_USER", "secretRef": "db", "key": "username" },
                { "name": "DB_PASSWORD", "secretRef": "db", "key": "password" },
            ],
            "secretFiles": [
                { "secretRef": "keys", "mountPath": "/secrets/keys" },
                { "secretRef": "config", "mountPath": "/etc/secure-api/config" },
            ],
            "rollout": { "autoRollback": auto_rollback, "progressDeadlineSeconds": 30 },
        },
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    let services: Api<SecureApiService> = cluster.api();
    services.create(&PostParams::default(), &service).await.unwrap_or_else(|e| panic!("service: {e}"));
}

async fn deployment(cluster: &TestCluster) -> Deployment {
    let api: Api<Deployment> = cluster.api();
    wait_for("the Deployment", DEADLINE, || async { api.get_opt("secure-api").await.ok().flatten() }).await
}

fn template_annotation(d: &Deployment) -> Option<String> {
    d.spec.as_ref()?.template.metadata.as_ref()?.annotations.as_ref()?.get("secureapi.dev/secret-versions").cloned()
}

async fn wait_template(cluster: &TestCluster, versions: &str) -> Deployment {
    let api: Api<Deployment> = cluster.api();
    wait_for(&format!("the template at {versions}"), DEADLINE, || async {
        let d = api.get("secure-api").await.ok()?;
        (template_annotation(&d)? == versions).then_some(d)
    })
    .await
}

fn as_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or_default()
}

/// The name of the db snapshot that the Deployment's first env var reads.
fn db_snapshot(d: &Deployment) -> Value {
    as_json(&d.spec)["template"]["spec"]["containers"][0]["env"][0]["valueFrom"]["secretKeyRef"]["name"].clone()
}

async fn service_status(cluster: &TestCluster) -> SecureApiServiceStatus {
    let api: Api<SecureApiService> = cluster.api();
    api.get("secure-api").await.unwrap_or_else(|e| panic!("{e}")).status.unwrap_or_default()
}

#[tokio::test]
async fn the_seed_service_runs_hardened_pods_fed_by_snapshot_secrets() {
    let (cluster, _operator) = seeded("sas-seed", false).await;
    let d = wait_template(&cluster, "config=1,db=1,keys=1").await;
    let spec = as_json(&d.spec);
    assert_eq!(spec["replicas"], 2);
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    let containers = pod["containers"].as_array().cloned().unwrap_or_default();
    assert!(!containers.is_empty());
    for container in &containers {
        let sc = &container["securityContext"];
        assert_eq!(sc["allowPrivilegeEscalation"], false);
        assert_eq!(sc["readOnlyRootFilesystem"], true);
        assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
        assert_eq!(container["resources"]["requests"], json!({ "cpu": "1", "memory": "512Mi" }));
        assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/health");
    }
    let env = &containers[0]["env"];
    let db_snapshot = env[0]["valueFrom"]["secretKeyRef"]["name"].as_str().unwrap_or_default().to_owned();
    assert!(db_snapshot.starts_with("secure-api-db-"), "{env}");
    let volumes: Vec<String> = pod["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["secret"]["secretName"].as_str().map(str::to_owned))
        .collect();
    assert!(
        volumes.iter().any(|v| v.starts_with("secure-api-keys-"))
            && volumes.iter().any(|v| v.starts_with("secure-api-config-")),
        "{volumes:?}"
    );

    let secrets: Api<Secret> = cluster.api();
    let snapshot = secrets.get(&db_snapshot).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(snapshot.immutable, Some(true));
    let accounts: Api<ServiceAccount> = cluster.api();
    let account = accounts.get("secure-api").await.unwrap_or_else(|e| panic!("{e}"));
    let annotations = account.metadata.annotations.unwrap_or_default();
    assert_eq!(
        annotations.get("iam.gke.io/gcp-service-account").map(String::as_str),
        Some("secure-api-sa@demo-project.iam.gserviceaccount.com")
    );
    // Its SecretRefs read as it: opted in for SecretRefs.
    assert_eq!(annotations.get("secureapi.dev/usable-by").map(String::as_str), Some("SecretRef"));
    let services: Api<Service> = cluster.api();
    let service = services.get("secure-api").await.unwrap_or_else(|e| panic!("{e}"));
    assert!(service.spec.and_then(|s| s.ports).unwrap_or_default().iter().any(|p| p.port == 80));
}

#[tokio::test]
async fn rotating_db_rolls_out_one_new_template_pinned_to_the_new_snapshot_with_emulator_hooks() {
    let Some((cluster, _kube, operator)) = seeded_and_ready("sas-rotate", false).await else { return };
    let services: Api<SecureApiService> = cluster.api();
    let before = deployment(&cluster).await;
    let old_snapshot = db_snapshot(&before);

    operator.gcp.add_version(PROJECT, "api-config-db", DB_V2.as_bytes());
    let after = wait_template(&cluster, "config=1,db=2,keys=1").await;
    assert_eq!(after.metadata.generation, before.metadata.generation.map(|g| g + 1), "exactly one template change");
    let new_snapshot = db_snapshot(&after);
    assert_ne!(old_snapshot, new_snapshot);
    let secrets: Api<Secret> = cluster.api();
    assert!(
        secrets.get_opt(old_snapshot.as_str().unwrap_or_default()).await.ok().flatten().is_some(),
        "the previous snapshot is kept"
    );

    wait_condition(&services, "secure-api", ready().is("True", "RolloutComplete")).await;
    let status = service_status(&cluster).await;
    assert_eq!(status.secret_versions.get("db").map(String::as_str), Some("2"));
    assert_eq!(status.secret_versions_summary.as_deref(), Some("config=1,db=2,keys=1"));
}

#[tokio::test]
async fn two_quick_rotations_make_at_most_two_template_changes_ending_on_the_newest() {
    let (cluster, operator) = seeded("sas-twice", false).await;
    let before = wait_template(&cluster, "config=1,db=1,keys=1").await;
    operator.gcp.add_version(PROJECT, "api-config-db", DB_V2.as_bytes());
    operator.gcp.add_version(PROJECT, "api-config-db", DB_V3.as_bytes());
    let after = wait_template(&cluster, "config=1,db=3,keys=1").await;
    let changes = after.metadata.generation.unwrap_or(0) - before.metadata.generation.unwrap_or(0);
    assert!((1..=2).contains(&changes), "{changes} template changes");
}

#[tokio::test]
async fn a_secretref_that_is_not_ready_keeps_the_current_revision() {
    let (cluster, operator) = seeded("sas-notready", false).await;
    let services: Api<SecureApiService> = cluster.api();
    let before = wait_template(&cluster, "config=1,db=1,keys=1").await;
    let two = operator.gcp.add_version(PROJECT, "api-config-db", DB_V2.as_bytes());
    operator
        .gcp
        .set_version_state(PROJECT, "api-config-db", two, VersionState::Disabled)
        .unwrap_or_else(|e| panic!("{e}"));
    wait_condition(&services, "secure-api", condition(types::SECRETS_RESOLVED).is("False", "VersionDisabled")).await;
    let after = deployment(&cluster).await;
    assert_eq!(template_annotation(&after), template_annotation(&before));
    assert_eq!(after.metadata.generation, before.metadata.generation);
}

#[tokio::test]
async fn a_stalled_rollout_with_auto_rollback_restores_the_previous_template_with_emulator_hooks() {
    let Some((cluster, kube, operator)) = seeded_and_ready("sas-rollback", true).await else { return };
    let services: Api<SecureApiService> = cluster.api();

    let before = deployment(&cluster).await;
    kube.set_deployment_simulation(DeploymentSimulation::Stall);
    operator.gcp.add_version(PROJECT, "api-config-db", DB_V2.as_bytes());
    wait_condition(&services, "secure-api", condition(types::ROLLOUT_COMPLETE).is("False", "RolledBack")).await;
    let restored = wait_template(&cluster, "config=1,db=1,keys=1").await;
    let changes = restored.metadata.generation.unwrap_or(0) - before.metadata.generation.unwrap_or(0);
    assert_eq!(changes, 2, "one change to the new revision, one back");
    let status = service_status(&cluster).await;
    let failed = status.failed_revision.unwrap_or_default();
    assert!(
        status
            .history
            .iter()
            .any(|r| r.revision == failed && r.secret_versions.get("db").map(String::as_str) == Some("2"))
    );
    assert_eq!(status.secret_versions.get("db").map(String::as_str), Some("1"), "status reports the restored revision");
}

#[tokio::test]
async fn a_steady_service_makes_no_writes_with_emulator_hooks() {
    let Some((_cluster, kube, operator)) = seeded_and_ready("sas-steady", false).await else { return };
    let witness = format!("projects/{PROJECT}/secrets/api-config-db/");
    let reads = operator.gcp.count_for("secretmanager.versions.access", &witness);
    wait_for("one refresh period", DEADLINE, || async {
        (operator.gcp.count_for("secretmanager.versions.access", &witness) > reads).then_some(())
    })
    .await;
    kube.reset_counts();
    let reads = operator.gcp.count_for("secretmanager.versions.access", &witness);
    wait_for("three refresh periods", DEADLINE, || async {
        (operator.gcp.count_for("secretmanager.versions.access", &witness) >= reads + 3).then_some(())
    })
    .await;
    for resource in [
        "deployments",
        "services",
        "serviceaccounts",
        "secrets",
        "secureapiservices",
        "secureapiservices/status",
        "secretrefs/status",
    ] {
        assert_eq!(kube.writes(resource), 0, "writes to {resource}: {:?}", kube.counts());
    }
}

/// Its children come from the caches, and the ServiceAccount, autoscaler and disruption budget
/// (not watched) were applied or found absent moments ago: nothing to read.
#[tokio::test]
async fn a_reconcile_of_a_ready_service_reads_nothing_with_emulator_hooks() {
    let Some((cluster, kube, operator)) = seeded_and_ready("sas-reads", false).await else { return };
    let reconciles = operator.metrics.reconciles(ControllerKind::SecureApiService);
    kube.reset_counts();
    // A label edit changes no generation: a reconcile with nothing to do.
    let touch = json!({ "metadata": { "labels": { "example.com/touched": "1" } } });
    let api: Api<SecureApiService> = cluster.api();
    api.patch("secure-api", &PatchParams::default(), &Patch::Merge(&touch)).await.unwrap_or_else(|e| panic!("{e}"));
    wait_for("a reconcile of the touched service", DEADLINE, || async {
        (operator.metrics.reconciles(ControllerKind::SecureApiService) > reconciles).then_some(())
    })
    .await;
    let gets: Vec<_> = kube.counts().into_iter().filter(|((verb, _), _)| verb == "get").collect();
    assert!(gets.is_empty(), "no GET for a ready service: {gets:?}");
}

#[tokio::test]
async fn deleting_the_service_removes_what_it_created_and_leaves_secretrefs_alone() {
    let (cluster, _operator) = seeded("sas-delete", false).await;
    wait_template(&cluster, "config=1,db=1,keys=1").await;
    let services: Api<SecureApiService> = cluster.api();
    services.delete("secure-api", &DeleteParams::default()).await.unwrap_or_else(|e| panic!("{e}"));
    let secrets: Api<Secret> = cluster.api();
    wait_for("everything the service created to go", DEADLINE, || async {
        let deployment_gone = cluster.api::<Deployment>().get_opt("secure-api").await.ok()?.is_none();
        let service_gone = cluster.api::<Service>().get_opt("secure-api").await.ok()?.is_none();
        let account_gone = cluster.api::<ServiceAccount>().get_opt("secure-api").await.ok()?.is_none();
        let snapshots = secrets
            .list(&Default::default())
            .await
            .ok()?
            .items
            .iter()
            // The service's snapshots, by their label (the operator's hash key lives here too).
            .filter(|s| s.labels().get("secureapi.dev/secureapiservice").is_some_and(|n| n == "secure-api"))
            .count();
        (deployment_gone && service_gone && account_gone && snapshots == 0).then_some(())
    })
    .await;
    let refs: Api<SecretRef> = cluster.api();
    for name in ["db", "keys", "config"] {
        assert!(refs.get_opt(name).await.ok().flatten().is_some(), "SecretRef {name} is left alone");
        assert!(secrets.get_opt(name).await.ok().flatten().is_some(), "Secret {name} is left alone");
    }
}

#[tokio::test]
async fn snapshots_beyond_the_revision_history_limit_are_removed() {
    let (cluster, operator) = seeded("sas-prune", false).await;
    let services: Api<SecureApiService> = cluster.api();
    services
        .patch(
            "secure-api",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({ "spec": { "revisionHistoryLimit": 1 } })),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    wait_template(&cluster, "config=1,db=1,keys=1").await;
    for (payload, versions) in [(DB_V2, "config=1,db=2,keys=1"), (DB_V3, "config=1,db=3,keys=1")] {
        operator.gcp.add_version(PROJECT, "api-config-db", payload.as_bytes());
        wait_template(&cluster, versions).await;
    }
    let secrets: Api<Secret> = cluster.api();
    let db_snapshots = || async {
        let list = secrets.list(&Default::default()).await.ok()?;
        Some(
            list.items
                .iter()
                .filter_map(|s| s.metadata.name.clone())
                .filter(|n| n.starts_with("secure-api-db-"))
                .count(),
        )
    };
    wait_for("db snapshots of the current and the previous revision only", DEADLINE, || async {
        (db_snapshots().await? == 2).then_some(())
    })
    .await;
}
