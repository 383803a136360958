//! The operator's own view for Prometheus, in-process: `secureapi_objects` counts SecretRefs by
//! their Ready reason from the caches (a deleted one leaves), and a newer version that cannot be
//! synced shows as a pending rotation until one is.

use crate::support::PROJECT;
use crate::support::operator::{Operator, cluster_with_operator};
use crate::support::wait::{DEADLINE, wait_for};
use kube::api::{Api, DeleteParams, PostParams};
use secure_api_operator::api::SecretRef;
use serde_json::{Value, json};

const SYNCED: &str = r#"secureapi_objects{kind="SecretRef",ready="True",reason="Synced"}"#;
const NOT_FOUND: &str = r#"secureapi_objects{kind="SecretRef",ready="False",reason="SecretNotFound"}"#;

fn secret_ref(name: &str, spec: Value) -> SecretRef {
    serde_json::from_value(json!({
        "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecretRef", "metadata": { "name": name }, "spec": spec,
    }))
    .unwrap_or_else(|e| panic!("secretref {name}: {e}"))
}

/// The value of the series named exactly `series` on the operator's metrics page, if present.
fn sample(operator: &Operator, series: &str) -> Option<f64> {
    let text = operator.metrics.encode();
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

async fn wait_sample(operator: &Operator, series: &str, wanted: Option<f64>) {
    wait_for(&format!("{series} = {wanted:?}"), DEADLINE, || async {
        (sample(operator, series) == wanted).then_some(())
    })
    .await;
}

#[tokio::test]
async fn the_object_gauge_counts_secret_refs_by_ready_reason_and_forgets_deleted_ones() {
    let (cluster, operator) = cluster_with_operator("mon-objects").await;
    operator.gcp.add_version(PROJECT, "db", b"s3cr3t-value");
    let api: Api<SecretRef> = cluster.api();
    for (name, secret) in [("db", "db"), ("missing", "no-such-secret")] {
        let object = secret_ref(name, json!({ "secret": secret }));
        api.create(&PostParams::default(), &object).await.unwrap_or_else(|e| panic!("creating {name}: {e}"));
    }
    wait_sample(&operator, SYNCED, Some(1.0)).await;
    wait_sample(&operator, NOT_FOUND, Some(1.0)).await;
    let text = operator.metrics.encode();
    assert!(!text.contains("s3cr3t-value") && !text.contains("\"missing\""), "no values, no names:\n{text}");

    api.delete("missing", &DeleteParams::default()).await.unwrap_or_else(|e| panic!("deleting: {e}"));
    wait_sample(&operator, NOT_FOUND, None).await;
    assert_eq!(sample(&operator, SYNCED), Some(1.0), "the synced one is still counted");
}

#[tokio::test]
async fn a_newer_version_that_cannot_be_synced_is_a_pending_rotation_until_one_is() {
    let (cluster, operator) = cluster_with_operator("mon-rotation").await;
    operator.gcp.add_version(PROJECT, "db", br#"{"password":"one"}"#);
    let api: Api<SecretRef> = cluster.api();
    let object = secret_ref("db", json!({ "secret": "db", "format": "json", "refreshInterval": "1s" }));
    api.create(&PostParams::default(), &object).await.unwrap_or_else(|e| panic!("creating db: {e}"));
    wait_sample(&operator, SYNCED, Some(1.0)).await;
    assert_eq!(sample(&operator, "secureapi_rotations_pending"), Some(0.0));

    // Version 2 is no JSON: the refresh reads it, cannot sync it, and the rotation stays pending.
    operator.gcp.add_version(PROJECT, "db", b"not json");
    wait_sample(&operator, "secureapi_rotations_pending", Some(1.0)).await;
    let reason = r#"secureapi_objects{kind="SecretRef",ready="False",reason="InvalidPayload"}"#;
    wait_sample(&operator, reason, Some(1.0)).await;
    wait_for("the pending rotation to age", DEADLINE, || async {
        sample(&operator, "secureapi_rotation_pending_seconds").filter(|age| *age > 0.0)
    })
    .await;

    operator.gcp.add_version(PROJECT, "db", br#"{"password":"three"}"#);
    wait_sample(&operator, "secureapi_rotations_pending", Some(0.0)).await;
    assert_eq!(sample(&operator, "secureapi_rotation_pending_seconds"), Some(0.0));
}
