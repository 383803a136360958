//! An operator upgrade alone changes nothing that runs. The state below was written by the
//! operator at commit 5d82990 (before content hashes were keyed and the pod was hardened further)
//! from the example: three SecretRefs, `secure-api` after one rotation of the database password.
//! Today's operator reconciles it without a template change, a new snapshot or a new hash.

use crate::support::PROJECT;
use crate::support::cluster::TestCluster;
use crate::support::operator::{Operator, OperatorOptions};
use crate::support::wait::{DEADLINE, wait_for};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Secret, Service, ServiceAccount};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use secure_api_operator::api::{SecretRef, SecureApiService};
use secure_api_operator::hash_key::store::SECRET_NAME;
use secure_api_operator::metrics::Controller as ControllerKind;
use secure_api_testbed::emulator::gcp::GcpEmulator;
use serde_json::{Value, json};
use std::collections::BTreeMap;

const FIXTURE: &str = include_str!("fixtures/upgrade/from-5d82990.json");
/// Secret Manager's versions behind the fixture, as they were added.
const VERSIONS: [(&str, &str); 4] = [
    ("api-config-db", r#"{"host":"db.example.com","port":5432,"username":"api_user","password":"change-me"}"#),
    ("api-config-db", r#"{"host":"db.example.com","port":5432,"username":"api_user","password":"rotated"}"#),
    ("api-config-keys", r#"{"external_api_key":"k1","jwt_secret":"j1","encryption_key":"e1"}"#),
    ("api-config-config", r#"{"debug_mode":false,"rate_limit":1000,"cache_ttl":3600,"log_level":"INFO"}"#),
];
const ACCESS: &str = "secretmanager.versions.access";

fn fixture_objects() -> Vec<Value> {
    serde_json::from_str(FIXTURE).unwrap_or_else(|e| panic!("fixture: {e}"))
}

fn typed<K: serde::de::DeserializeOwned>(value: &Value) -> K {
    serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("fixture object: {e}"))
}

/// Creates `object` (with its status, when it has one) and returns its uid.
async fn create<K>(api: &Api<K>, object: &Value) -> String
where
    K: Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let created = api.create(&PostParams::default(), &typed::<K>(object)).await.unwrap_or_else(|e| panic!("{e}"));
    if let Some(status) = object.get("status") {
        let patch = json!({ "status": status });
        api.patch_status(&created.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap_or_else(|e| panic!("status of {}: {e}", created.name_any()));
    }
    created.uid().unwrap_or_default()
}

/// The fixture in `cluster`'s namespace: owners first, then their children pointing at them.
async fn load_fixture(cluster: &TestCluster) {
    let mut uids = BTreeMap::new();
    let objects = fixture_objects();
    let kind = |object: &Value| object["kind"].as_str().unwrap_or_default().to_owned();
    let name = |object: &Value| object["metadata"]["name"].as_str().unwrap_or_default().to_owned();
    for owner in objects.iter().filter(|o| ["SecretRef", "SecureApiService"].contains(&kind(o).as_str())) {
        let uid = match kind(owner).as_str() {
            "SecretRef" => create(&cluster.api::<SecretRef>(), owner).await,
            _ => create(&cluster.api::<SecureApiService>(), owner).await,
        };
        uids.insert((kind(owner), name(owner)), uid);
    }
    for child in objects.iter().filter(|o| !["SecretRef", "SecureApiService"].contains(&kind(o).as_str())) {
        let mut child = child.clone();
        for owner in child["metadata"]["ownerReferences"].as_array_mut().into_iter().flatten() {
            let key = (kind(owner), owner["name"].as_str().unwrap_or_default().to_owned());
            owner["uid"] = json!(uids.get(&key).unwrap_or_else(|| panic!("no owner {key:?}")));
        }
        match kind(&child).as_str() {
            "ServiceAccount" => create(&cluster.api::<ServiceAccount>(), &child).await,
            "Secret" => create(&cluster.api::<Secret>(), &child).await,
            "Deployment" => create(&cluster.api::<Deployment>(), &child).await,
            "Service" => create(&cluster.api::<Service>(), &child).await,
            other => panic!("the fixture holds a {other}"),
        };
    }
}

/// What must not change: the Deployment's generation, annotations and template, the Secrets
/// there are, and the hash each SecretRef recorded.
async fn running_state(cluster: &TestCluster) -> Value {
    let deployment = cluster.api::<Deployment>().get("secure-api").await.unwrap_or_else(|e| panic!("{e}"));
    let mut secrets: Vec<String> = cluster
        .api::<Secret>()
        .list(&Default::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .iter()
        .map(|s| s.name_any())
        .collect();
    // A real cluster adds its own: only the fixture's and the service's count (the operator's
    // hash key lives here too, as the test's namespace stands for the operator's).
    secrets.retain(|name| ["db", "keys", "config"].contains(&name.as_str()) || name.starts_with("secure-api-"));
    secrets.retain(|name| name != SECRET_NAME);
    secrets.sort();
    let mut hashes = BTreeMap::new();
    for name in ["db", "keys", "config"] {
        let status = cluster.api::<SecretRef>().get(name).await.ok().and_then(|r| r.status).unwrap_or_default();
        hashes.insert(name, status.content_hash);
    }
    // The hash of what was applied covers the owner's uid and the namespace, which the fixture
    // cannot keep when it is loaded anew: a metadata-only write of it is the fixture's doing.
    let mut annotations = deployment.annotations().clone();
    annotations.remove("secureapi.dev/applied-hash");
    json!({
        "generation": deployment.metadata.generation,
        "annotations": annotations,
        "template": deployment.spec.map(|s| s.template),
        "secrets": secrets,
        "hashes": hashes,
    })
}

#[tokio::test]
async fn an_operator_upgrade_alone_rolls_nothing() {
    let cluster = TestCluster::with_crds("upgrade").await;
    let gcp = GcpEmulator::default();
    let reader = gcp.create_service_account(PROJECT, "secure-api-sa");
    for (secret, payload) in VERSIONS {
        gcp.add_version(PROJECT, secret, payload.as_bytes());
        let resource = format!("projects/{PROJECT}/secrets/{secret}");
        gcp.add_iam_binding(&resource, "roles/secretmanager.secretAccessor", &format!("serviceAccount:{reader}"));
    }
    let member = format!("serviceAccount:{PROJECT}.svc.id.goog[{}/secure-api]", cluster.namespace);
    gcp.add_iam_binding(
        &format!("projects/{PROJECT}/serviceAccounts/{reader}"),
        "roles/iam.workloadIdentityUser",
        &member,
    );
    load_fixture(&cluster).await;
    let before = running_state(&cluster).await;

    let options = OperatorOptions { gcp: Some(gcp.clone()), operator_identity: false, ..OperatorOptions::default() };
    let operator = Operator::start_with(&cluster, options).await;
    // Every SecretRef read its version again (nothing of the old state is taken on trust)...
    wait_for("each SecretRef read Secret Manager", DEADLINE, || async {
        let read = |secret: &str| gcp.count_for(ACCESS, &format!("projects/{PROJECT}/secrets/{secret}/"));
        let all_read = ["api-config-db", "api-config-keys", "api-config-config"].iter().all(|s| read(s) > 0);
        (all_read && operator.metrics.reconciles(ControllerKind::SecretRef) >= 3).then_some(())
    })
    .await;
    // ...and the service reconciled after them: a label edit, which changes no generation.
    let services = cluster.api::<SecureApiService>();
    let reconciles = operator.metrics.reconciles(ControllerKind::SecureApiService);
    let touch = json!({ "metadata": { "labels": { "example.com/touched": "1" } } });
    services
        .patch("secure-api", &PatchParams::default(), &Patch::Merge(&touch))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    wait_for("a reconcile of the service after the SecretRefs'", DEADLINE, || async {
        (operator.metrics.reconciles(ControllerKind::SecureApiService) > reconciles).then_some(())
    })
    .await;

    let after = running_state(&cluster).await;
    assert_eq!(after, before, "the upgrade changed what runs");
}
