//! Least privilege per namespace, end to end: SecretRefs read Secret Manager as the ServiceAccount
//! they name (TokenRequest → STS → optionally IAM Credentials), the GCP emulator's IAM decides,
//! and a namespace that names no ServiceAccount may use the operator's identity only when allowed.
//! The cluster may be real (`SECUREAPI_E2E_KUBECONFIG`): the GCP emulator then verifies that
//! cluster's tokens against its `/openid/v1/jwks`.

use crate::support::cluster::TestCluster;
use crate::support::conditions::{Conditioned, ready, wait_condition};
use crate::support::events;
use crate::support::operator::{Operator, OperatorOptions};
use crate::support::wait::{DEADLINE, wait_for};
use crate::support::{PROJECT, principal};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use secure_api_operator::api::SecretRef;
use secure_api_operator::api::conditions::{find_condition, types};
use serde_json::{Value, json};
use std::time::Duration;

const ACCESS: &str = "secretmanager.versions.access";
const EXCHANGE: &str = "sts.token";
const ACCESSOR: &str = "roles/secretmanager.secretAccessor";
const WORKLOAD_IDENTITY_USER: &str = "roles/iam.workloadIdentityUser";

fn secret_resource(id: &str) -> String {
    format!("projects/{PROJECT}/secrets/{id}")
}

/// A ServiceAccount opted in for SecretRefs, acting as `google_service_account` if given.
async fn service_account(cluster: &TestCluster, name: &str, google_service_account: Option<&str>) {
    let mut annotations = json!({ "secureapi.dev/usable-by": "SecretRef" });
    if let Some(gsa) = google_service_account {
        annotations["iam.gke.io/gcp-service-account"] = json!(gsa);
    }
    let account: ServiceAccount =
        serde_json::from_value(json!({ "metadata": { "name": name, "annotations": annotations } }))
            .unwrap_or_else(|e| panic!("{e}"));
    let api: Api<ServiceAccount> = cluster.api();
    api.create(&PostParams::default(), &account).await.unwrap_or_else(|e| panic!("creating {name}: {e}"));
}

async fn secret_ref(cluster: &TestCluster, name: &str, spec: Value) {
    let object: SecretRef = serde_json::from_value(json!({
        "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecretRef", "metadata": { "name": name }, "spec": spec,
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    let api: Api<SecretRef> = cluster.api();
    api.create(&PostParams::default(), &object).await.unwrap_or_else(|e| panic!("creating {name}: {e}"));
}

async fn secret_value(cluster: &TestCluster, name: &str) -> Option<String> {
    let api: Api<Secret> = cluster.api();
    let secret = api.get_opt(name).await.ok()??;
    let value = secret.data?.get("value")?.0.clone();
    Some(String::from_utf8_lossy(&value).into_owned())
}

async fn refresh(cluster: &TestCluster, name: &str, token: &str) {
    let api: Api<SecretRef> = cluster.api();
    let patch = json!({ "metadata": { "annotations": { "secureapi.dev/refresh": token } } });
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn a_secret_granted_to_another_namespace_is_denied_and_the_denied_principal_is_logged() {
    let cluster = TestCluster::with_crds("id-team-b").await;
    let refs: Api<SecretRef> = cluster.api();
    let operator =
        Operator::start_with(&cluster, OperatorOptions { operator_identity: false, ..OperatorOptions::default() })
            .await;
    let gcp = &operator.gcp;
    gcp.add_version(PROJECT, "team-a-db", b"team-a-password");
    gcp.add_iam_binding(&secret_resource("team-a-db"), ACCESSOR, &principal("team-a", "app"));
    service_account(&cluster, "app", None).await;

    secret_ref(&cluster, "stolen", json!({ "secret": "team-a-db", "serviceAccountName": "app" })).await;
    let message = wait_condition(&refs, "stolen", ready().is("False", "PermissionDenied")).await.message(types::READY);
    assert!(message.contains("PERMISSION_DENIED"), "{message}");
    assert_eq!(secret_value(&cluster, "stolen").await, None, "nothing is written in this namespace");
    let denied = principal(&cluster.namespace, "app");
    let denials = gcp.denials();
    assert!(
        denials.iter().any(|d| d.principal == denied && d.resource.starts_with(&secret_resource("team-a-db"))),
        "{denials:?}"
    );
    assert!(denied.ends_with(&format!("/subject/ns/{}/sa/app", cluster.namespace)));
}

#[tokio::test]
async fn without_a_service_account_only_an_allowed_namespace_uses_the_operators_identity() {
    let cluster = TestCluster::with_crds("id-required").await;
    let refs: Api<SecretRef> = cluster.api();
    let refused =
        Operator::start_with(&cluster, OperatorOptions { operator_identity: false, ..OperatorOptions::default() })
            .await;
    refused.gcp.add_version(PROJECT, "shared", b"v1");
    secret_ref(&cluster, "plain", json!({ "secret": "shared" })).await;
    let message = wait_condition(&refs, "plain", ready().is("False", "IdentityRequired")).await.message(types::READY);
    assert!(message.contains("serviceAccountName"), "{message}");
    assert_eq!(refused.gcp.count(ACCESS), 0, "no Google call without an identity");
    assert_eq!(refused.gcp.count(EXCHANGE), 0);
    refused.stop().await;

    // The same namespace allowed by the selector: the operator's own identity (the emulator's owner).
    let allowed = Operator::start(&cluster).await;
    allowed.gcp.add_version(PROJECT, "shared", b"v1");
    wait_condition(&refs, "plain", ready().is("True", "Synced")).await;
    assert_eq!(secret_value(&cluster, "plain").await.as_deref(), Some("v1"));
    assert_eq!(allowed.gcp.count(EXCHANGE), 0, "the operator's identity needs no exchange");
}

#[tokio::test]
async fn direct_principal_and_impersonation_both_sync_and_a_refused_impersonation_keeps_the_secret() {
    let cluster = TestCluster::with_crds("id-paths").await;
    let refs: Api<SecretRef> = cluster.api();
    let operator =
        Operator::start_with(&cluster, OperatorOptions { operator_identity: false, ..OperatorOptions::default() })
            .await;
    let gcp = &operator.gcp;
    let namespace = cluster.namespace.clone();
    gcp.add_version(PROJECT, "direct", b"direct-value");
    gcp.add_iam_binding(&secret_resource("direct"), ACCESSOR, &principal(&namespace, "direct-reader"));
    let reader = gcp.create_service_account(PROJECT, "reader");
    let stranger = gcp.create_service_account(PROJECT, "stranger");
    gcp.add_version(PROJECT, "via-gsa", b"gsa-value");
    gcp.add_iam_binding(&secret_resource("via-gsa"), ACCESSOR, &format!("serviceAccount:{reader}"));
    gcp.add_iam_binding(&secret_resource("via-gsa"), ACCESSOR, &format!("serviceAccount:{stranger}"));
    let member = format!("serviceAccount:{PROJECT}.svc.id.goog[{namespace}/gsa-reader]");
    gcp.add_iam_binding(&format!("projects/{PROJECT}/serviceAccounts/{reader}"), WORKLOAD_IDENTITY_USER, &member);
    // Short-lived Google tokens, so a changed annotation is used at the next refresh.
    gcp.set_access_token_lifetime(Duration::from_secs(2));
    service_account(&cluster, "direct-reader", None).await;
    service_account(&cluster, "gsa-reader", Some(&reader)).await;

    secret_ref(&cluster, "direct", json!({ "secret": "direct", "serviceAccountName": "direct-reader" })).await;
    secret_ref(&cluster, "via-gsa", json!({ "secret": "via-gsa", "serviceAccountName": "gsa-reader" })).await;
    wait_condition(&refs, "direct", ready().is("True", "Synced")).await;
    wait_condition(&refs, "via-gsa", ready().is("True", "Synced")).await;
    assert_eq!(secret_value(&cluster, "direct").await.as_deref(), Some("direct-value"));
    assert_eq!(secret_value(&cluster, "via-gsa").await.as_deref(), Some("gsa-value"));

    // The ServiceAccount now names a Google service account it may not act as; the next
    // exchange (the 2 s tokens are replaced within seconds) is refused.
    let accounts: Api<ServiceAccount> = cluster.api();
    let patch = json!({ "metadata": { "annotations": { "iam.gke.io/gcp-service-account": stranger } } });
    accounts
        .patch("gsa-reader", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut asked = 0;
    wait_for("a check refused after the token was replaced", DEADLINE, || {
        asked += 1;
        let cluster = &cluster;
        async move {
            refresh(cluster, "via-gsa", &asked.to_string()).await;
            let api: Api<SecretRef> = cluster.api();
            let object = api.get("via-gsa").await.ok()?;
            let ready = find_condition(&object.status.as_ref()?.conditions, types::READY)?.clone();
            (ready.reason == "PermissionDenied").then_some(())
        }
    })
    .await;
    let message = wait_condition(&refs, "via-gsa", ready().is("False", "PermissionDenied")).await.message(types::READY);
    assert!(message.contains(&stranger), "{message}");
    assert_eq!(secret_value(&cluster, "via-gsa").await.as_deref(), Some("gsa-value"), "the last good Secret stays");
}

/// Secret Manager answers 403 for a secret the caller may not see, whether or not it exists: the
/// message says both, and names the principal to grant (the project's number is not known here).
#[tokio::test]
async fn a_refused_read_names_the_principal_and_the_role_to_grant() {
    let cluster = TestCluster::with_crds("id-refused").await;
    let refs: Api<SecretRef> = cluster.api();
    let operator =
        Operator::start_with(&cluster, OperatorOptions { operator_identity: false, ..OperatorOptions::default() })
            .await;
    let namespace = cluster.namespace.clone();
    operator.gcp.add_version(PROJECT, "exists", b"exists-value");
    service_account(&cluster, "reader", None).await;
    secret_ref(&cluster, "exists", json!({ "secret": "exists", "serviceAccountName": "reader" })).await;
    secret_ref(&cluster, "missing", json!({ "secret": "missing", "serviceAccountName": "reader" })).await;
    let pool = format!("workloadIdentityPools/{PROJECT}.svc.id.goog/subject/ns/{namespace}/sa/reader");
    for name in ["exists", "missing"] {
        let message = wait_condition(&refs, name, ready().is("False", "PermissionDenied")).await.message(types::READY);
        assert!(message.contains(&format!("secrets/{name}: the secret may not exist, or principal://")), "{message}");
        assert!(message.contains(&format!("{pool} lacks roles/secretmanager.secretAccessor on it")), "{message}");
        assert!(message.ends_with("HTTP 403 PERMISSION_DENIED)"), "{message}");
    }
}

#[tokio::test]
async fn a_service_account_that_does_not_exist_yet_is_waited_for() {
    let cluster = TestCluster::with_crds("id-missing-sa").await;
    let refs: Api<SecretRef> = cluster.api();
    let operator =
        Operator::start_with(&cluster, OperatorOptions { operator_identity: false, ..OperatorOptions::default() })
            .await;
    let namespace = cluster.namespace.clone();
    operator.gcp.add_version(PROJECT, "later", b"later-value");
    operator.gcp.add_iam_binding(&secret_resource("later"), ACCESSOR, &principal(&namespace, "late"));
    secret_ref(&cluster, "later", json!({ "secret": "later", "serviceAccountName": "late" })).await;
    let message =
        wait_condition(&refs, "later", ready().is("False", "ServiceAccountNotFound")).await.message(types::READY);
    assert!(message.contains(&format!("ServiceAccount {namespace}/late not found yet: waiting")), "{message}");
    assert_eq!(operator.gcp.count(ACCESS), 0);
    service_account(&cluster, "late", None).await;
    wait_condition(&refs, "later", ready().is("True", "Synced")).await;
    let warnings = events::of_type(&cluster, "Warning").await;
    assert!(warnings.is_empty(), "an awaited ServiceAccount is no failure:\n{}", events::describe(&warnings));
}

/// Warning Events with `reason` about SecretRef `name`.
async fn warnings(cluster: &TestCluster, name: &str, reason: &str) -> Vec<Event> {
    let about = |e: &Event| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name);
    let all = events::of_type(cluster, "Warning").await;
    all.into_iter().filter(|e| about(e) && e.reason.as_deref() == Some(reason)).collect()
}

/// Failed SecretRef reconciles of `category` so far, from the operator's metrics.
fn failures(operator: &Operator, category: &str) -> u64 {
    let series = format!(r#"secureapi_reconcile_errors_total{{controller="secretref",category="{category}"}}"#);
    let text = operator.metrics.encode();
    let line = text.lines().find(|l| l.starts_with(&series));
    line.and_then(|l| l.rsplit(' ').next()).and_then(|n| n.parse().ok()).unwrap_or(0)
}

#[tokio::test]
async fn a_service_account_still_missing_after_the_grace_gets_one_warning() {
    let cluster = TestCluster::with_crds("id-never-sa").await;
    let refs: Api<SecretRef> = cluster.api();
    let options = OperatorOptions {
        operator_identity: false,
        service_account_grace: Duration::from_secs(1),
        ..OperatorOptions::default()
    };
    let operator = Operator::start_with(&cluster, options).await;
    let namespace = cluster.namespace.clone();
    secret_ref(&cluster, "typo", json!({ "secret": "typo", "serviceAccountName": "nobody" })).await;
    let found = wait_for("a ServiceAccountNotFound Warning", DEADLINE, || async {
        warnings(&cluster, "typo", "ServiceAccountNotFound").await.into_iter().next()
    })
    .await;
    assert_eq!(found.note.as_deref(), Some(format!("ServiceAccount {namespace}/nobody not found").as_str()));
    let message =
        wait_condition(&refs, "typo", ready().is("False", "ServiceAccountNotFound")).await.message(types::READY);
    assert_eq!(message, format!("ServiceAccount {namespace}/nobody not found"));
    // Later retries of the same failure add none.
    let failed = failures(&operator, "service_account_not_found");
    wait_for("three more retries", DEADLINE, || async {
        (failures(&operator, "service_account_not_found") >= failed + 3).then_some(())
    })
    .await;
    assert_eq!(warnings(&cluster, "typo", "ServiceAccountNotFound").await.len(), 1);
}

#[tokio::test]
async fn a_service_account_deleted_after_a_sync_is_a_warning_at_once() {
    let cluster = TestCluster::with_crds("id-gone-sa").await;
    let refs: Api<SecretRef> = cluster.api();
    let operator =
        Operator::start_with(&cluster, OperatorOptions { operator_identity: false, ..OperatorOptions::default() })
            .await;
    operator.gcp.add_version(PROJECT, "kept", b"kept-value");
    operator.gcp.add_iam_binding(&secret_resource("kept"), ACCESSOR, &principal(&cluster.namespace, "reader"));
    service_account(&cluster, "reader", None).await;
    secret_ref(&cluster, "kept", json!({ "secret": "kept", "serviceAccountName": "reader" })).await;
    wait_condition(&refs, "kept", ready().is("True", "Synced")).await;

    let accounts: Api<ServiceAccount> = cluster.api();
    accounts.delete("reader", &DeleteParams::default()).await.unwrap_or_else(|e| panic!("{e}"));
    let mut asked = 0;
    wait_for("a ServiceAccountNotFound Warning", DEADLINE, || {
        asked += 1;
        let cluster = &cluster;
        async move {
            refresh(cluster, "kept", &asked.to_string()).await;
            warnings(cluster, "kept", "ServiceAccountNotFound").await.into_iter().next()
        }
    })
    .await;
    assert_eq!(secret_value(&cluster, "kept").await.as_deref(), Some("kept-value"), "the last good Secret stays");
}

#[tokio::test]
async fn one_exchange_serves_a_hundred_secret_refs_of_one_service_account_with_emulator_hooks() {
    let cluster = TestCluster::with_crds("id-shared").await;
    let refs: Api<SecretRef> = cluster.api();
    let operator =
        Operator::start_with(&cluster, OperatorOptions { operator_identity: false, ..OperatorOptions::default() })
            .await;
    let gcp = &operator.gcp;
    gcp.add_version(PROJECT, "fleet", b"fleet-value");
    gcp.add_iam_binding(&secret_resource("fleet"), ACCESSOR, &principal(&cluster.namespace, "fleet"));
    service_account(&cluster, "fleet", None).await;
    for i in 0..100 {
        secret_ref(&cluster, &format!("fleet-{i}"), json!({ "secret": "fleet", "serviceAccountName": "fleet" })).await;
    }
    for i in 0..100 {
        wait_condition(&refs, &format!("fleet-{i}"), ready().is("True", "Synced")).await;
    }
    assert_eq!(gcp.count(EXCHANGE), 1, "100 SecretRefs of one ServiceAccount share one exchange");
    if let Some(requests) = cluster_token_requests(&cluster) {
        assert_eq!(requests, 1, "and one TokenRequest");
    }
}

/// TokenRequests the emulated cluster served (`None` on a real cluster).
fn cluster_token_requests(cluster: &TestCluster) -> Option<u64> {
    cluster.hooks().map(|kube| kube.count("create", "serviceaccounts/token"))
}

#[tokio::test]
async fn short_lived_tokens_are_replaced_before_they_expire_under_a_running_sync_loop() {
    let cluster = TestCluster::with_crds("id-renew").await;
    let api: Api<SecretRef> = cluster.api();
    let operator =
        Operator::start_with(&cluster, OperatorOptions { operator_identity: false, ..OperatorOptions::default() })
            .await;
    let gcp = &operator.gcp;
    // 4 s tokens (the operator replaces them a second early) under a loop that reads every second.
    gcp.set_access_token_lifetime(Duration::from_secs(4));
    gcp.add_version(PROJECT, "loop", b"loop-value");
    gcp.add_iam_binding(&secret_resource("loop"), ACCESSOR, &principal(&cluster.namespace, "looper"));
    service_account(&cluster, "looper", None).await;
    let spec = json!({ "secret": "loop", "serviceAccountName": "looper", "refreshInterval": "1s" });
    secret_ref(&cluster, "looping", spec).await;
    wait_condition(&api, "looping", ready().is("True", "Synced")).await;
    let since = |object: &SecretRef| {
        let ready = object.status.as_ref().and_then(|s| find_condition(&s.conditions, types::READY).cloned());
        ready.map(|c| c.last_transition_time)
    };
    let first = since(&api.get("looping").await.unwrap_or_else(|e| panic!("{e}")));
    let exchanges = gcp.count(EXCHANGE);
    let reads = gcp.count_for(ACCESS, &secret_resource("loop"));
    wait_for("three more exchanges under the sync loop", Duration::from_secs(60), || async {
        (gcp.count(EXCHANGE) >= exchanges + 3).then_some(())
    })
    .await;
    assert!(gcp.count_for(ACCESS, &secret_resource("loop")) > reads + 3, "the loop kept reading");
    let after = api.get("looping").await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(since(&after), first, "Ready never flipped: no call failed on an expired token");
    assert!(gcp.denials().is_empty(), "{:?}", gcp.denials());
}
