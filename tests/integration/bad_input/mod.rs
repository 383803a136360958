//! Bad input that the schema cannot refuse lands as a condition with a fixed reason, and what is
//! already synced stays: one test per field, named after it. `fields` walks every field of the
//! three CRDs, refused by the schema or a CEL rule, or landing as a condition.

mod fields;

use crate::support::PROJECT;
use crate::support::cluster::TestCluster;
use crate::support::conditions::{Conditioned, ready, wait_condition};
use crate::support::operator::{Operator, cluster_with_operator};
use crate::support::wait::{DEADLINE, wait_for};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams, PostParams};
use secure_api_operator::api::conditions::{reasons, types};
use secure_api_operator::api::{SecretRef, SecureApiService};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

async fn create<K>(cluster: &TestCluster, object: Value) -> K
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    let object: K = serde_json::from_value(object).unwrap_or_else(|e| panic!("{e}"));
    cluster.api::<K>().create(&PostParams::default(), &object).await.unwrap_or_else(|e| panic!("creating: {e}"))
}

fn secret_ref(name: &str, spec: Value) -> Value {
    json!({ "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecretRef", "metadata": { "name": name }, "spec": spec })
}

fn service(name: &str, spec: Value) -> Value {
    json!({ "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecureApiService", "metadata": { "name": name }, "spec": spec })
}

async fn secret_bytes(cluster: &TestCluster, name: &str, key: &str) -> Option<Vec<u8>> {
    let secret = cluster.api::<Secret>().get_opt(name).await.ok()??;
    secret.data?.remove(key).map(|bytes| bytes.0)
}

/// A SecretRef synced from version 1; `bad` becomes version 2.
async fn synced_then(cluster: &TestCluster, operator: &Operator, spec: Value, good: &[u8], bad: &[u8]) {
    operator.gcp.add_version(PROJECT, "payload", good);
    create::<SecretRef>(cluster, secret_ref("payload", spec)).await;
    wait_condition(&cluster.api::<SecretRef>(), "payload", ready().reason(reasons::SYNCED)).await;
    operator.gcp.add_version(PROJECT, "payload", bad);
    let api = cluster.api::<SecretRef>();
    let refresh = json!({ "metadata": { "annotations": { "secureapi.dev/refresh": "now" } } });
    api.patch("payload", &PatchParams::default(), &Patch::Merge(&refresh)).await.unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn spec_format_json_with_a_non_utf8_payload_is_invalid_payload_and_keeps_the_secret() {
    let (cluster, operator) = cluster_with_operator("bad-json-bytes").await;
    let spec = json!({ "secret": "payload", "format": "json" });
    synced_then(&cluster, &operator, spec, br#"{"password":"pw-1"}"#, b"{\"password\":\"\xff\xfe\"}").await;
    let message = wait_condition(&cluster.api::<SecretRef>(), "payload", ready().reason(reasons::INVALID_PAYLOAD))
        .await
        .message(types::READY);
    assert!(message.contains("not UTF-8"), "{message}");
    assert_eq!(secret_bytes(&cluster, "payload", "password").await.as_deref(), Some(&b"pw-1"[..]));
}

#[tokio::test]
async fn spec_format_dotenv_with_a_non_utf8_payload_is_invalid_payload_and_keeps_the_secret() {
    let (cluster, operator) = cluster_with_operator("bad-dotenv-bytes").await;
    let spec = json!({ "secret": "payload", "format": "dotenv" });
    synced_then(&cluster, &operator, spec, b"PASSWORD=pw-1\n", b"PASSWORD=\xff\n").await;
    let message = wait_condition(&cluster.api::<SecretRef>(), "payload", ready().reason(reasons::INVALID_PAYLOAD))
        .await
        .message(types::READY);
    assert!(message.contains("not UTF-8"), "{message}");
    assert_eq!(secret_bytes(&cluster, "payload", "PASSWORD").await.as_deref(), Some(&b"pw-1"[..]));
}

#[tokio::test]
async fn spec_keys_property_to_a_missing_path_is_invalid_payload_and_keeps_the_secret() {
    let (cluster, operator) = cluster_with_operator("bad-property").await;
    let spec = json!({ "secret": "payload", "format": "json", "keys": [{ "key": "pw", "property": "db.password" }] });
    synced_then(&cluster, &operator, spec, br#"{"db":{"password":"pw-1"}}"#, br#"{"db":{"user":"u"}}"#).await;
    let message = wait_condition(&cluster.api::<SecretRef>(), "payload", ready().reason(reasons::INVALID_PAYLOAD))
        .await
        .message(types::READY);
    assert!(message.contains(r#"property "db.password" is not in the payload"#), "{message}");
    assert_eq!(secret_bytes(&cluster, "payload", "pw").await.as_deref(), Some(&b"pw-1"[..]));
}

#[tokio::test]
async fn spec_keys_property_to_an_object_or_list_maps_its_compact_json() {
    let (cluster, operator) = cluster_with_operator("object-property").await;
    operator.gcp.add_version(PROJECT, "nested", br#"{"db":{"host":"h","port":5432},"hosts":["a","b"]}"#);
    let keys = json!([{ "key": "db", "property": "db" }, { "key": "hosts", "property": "hosts" }]);
    create::<SecretRef>(&cluster, secret_ref("nested", json!({ "secret": "nested", "format": "json", "keys": keys })))
        .await;
    wait_condition(&cluster.api::<SecretRef>(), "nested", ready().reason(reasons::SYNCED)).await;
    assert_eq!(secret_bytes(&cluster, "nested", "db").await.as_deref(), Some(&br#"{"host":"h","port":5432}"#[..]));
    assert_eq!(secret_bytes(&cluster, "nested", "hosts").await.as_deref(), Some(&br#"["a","b"]"#[..]));
}

#[tokio::test]
async fn a_payload_of_exactly_64_kib_syncs_byte_for_byte() {
    let (cluster, operator) = cluster_with_operator("payload-64k").await;
    // Secret Manager's largest payload, every byte value in it.
    let payload: Vec<u8> = (0..64 * 1024).map(|i: usize| (i % 256) as u8).collect();
    operator.gcp.add_version(PROJECT, "big", &payload);
    create::<SecretRef>(&cluster, secret_ref("big", json!({ "secret": "big" }))).await;
    wait_condition(&cluster.api::<SecretRef>(), "big", ready().reason(reasons::SYNCED)).await;
    let synced = secret_bytes(&cluster, "big", "value").await.unwrap_or_default();
    assert!(synced == payload, "{} bytes synced, not the 65,536 written", synced.len());
}

#[tokio::test]
async fn spec_secret_files_mount_path_tmp_is_invalid_spec_and_the_running_revision_stays() {
    let (cluster, operator) = cluster_with_operator("bad-mount-tmp").await;
    operator.gcp.add_version(PROJECT, "keys", br#"{"jwt":"k-1"}"#);
    create::<SecretRef>(&cluster, secret_ref("keys", json!({ "secret": "keys", "format": "json" }))).await;
    let files = json!([{ "secretRef": "keys", "mountPath": "/secrets/keys" }]);
    let spec = json!({ "image": "example.com/api:1", "secretFiles": files });
    create::<SecureApiService>(&cluster, service("api", spec)).await;
    let services = cluster.api::<SecureApiService>();
    // Applied (whether its pods run does not matter here: a real cluster may not pull the image).
    wait_for("the first revision", DEADLINE, || async { services.get("api").await.ok()?.status?.revision }).await;
    let deployments = cluster.api::<Deployment>();
    let before = deployments.get("api").await.unwrap_or_else(|e| panic!("{e}")).spec.map(|s| s.template);

    let moved = json!({ "spec": { "secretFiles": [{ "secretRef": "keys", "mountPath": "/tmp" }] } });
    services.patch("api", &PatchParams::default(), &Patch::Merge(&moved)).await.unwrap_or_else(|e| panic!("{e}"));
    let message = wait_condition(&cluster.api::<SecureApiService>(), "api", ready().reason(reasons::INVALID_SPEC))
        .await
        .message(types::READY);
    assert!(message.contains("\"/tmp\"") && message.contains("tmp volume"), "{message}");
    let after = deployments.get("api").await.unwrap_or_else(|e| panic!("{e}")).spec.map(|s| s.template);
    assert!(before == after, "the running revision changed");
}
