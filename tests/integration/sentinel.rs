//! A planted payload value must never appear in logs, Events, status or metrics — on success and
//! on every failure path, as a value, as a payload's key or quoted by the API server — nor an API
//! key string a GatewayConfig's keys were given. (Runs in its own process under nextest, so it can own the global
//! tracing subscriber.)

use crate::gateway_config::{backend_service, create_gateway};
use crate::support::PROJECT;
use crate::support::cluster::TestCluster;
use crate::support::conditions::{Conditioned, condition, ready, wait_condition};
use crate::support::logs::Captured;
use crate::support::operator::{NotificationOptions, Operator, OperatorOptions, emulator_with_operator, topic_name};
use crate::support::wait::{DEADLINE, wait_for};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use secure_api_operator::api::conditions::types;
use secure_api_operator::api::{GatewayConfig, SecretRef};
use secure_api_operator::hash_key::store::SECRET_NAME;
use secure_api_testbed::emulator::gcp::{GcpFault, VersionState};
use secure_api_testbed::emulator::kube::Fault as KubeFault;
use serde_json::json;

/// Every object of `api` as JSON: what status or Events show anyone who may read them.
async fn listed<K>(api: &Api<K>) -> String
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let items = api.list(&ListParams::default()).await.unwrap_or_else(|e| panic!("{e}")).items;
    serde_json::to_string(&items).unwrap_or_default()
}

/// SecretRef `db` (format json, re-checked every second), once it is Synced.
async fn create_synced_db(api: &Api<SecretRef>) {
    let spec = json!({ "secret": "db", "format": "json", "refreshInterval": "1s" });
    let object: SecretRef = serde_json::from_value(json!({
        "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecretRef", "metadata": { "name": "db" }, "spec": spec,
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    api.create(&PostParams::default(), &object).await.unwrap_or_else(|e| panic!("{e}"));
    wait_condition(api, "db", ready().reason("Synced")).await;
}

#[tokio::test]
async fn a_planted_payload_never_appears_in_logs_events_status_or_metrics() {
    let logs = Captured::install("trace,hyper=debug,hyper_util=debug,h2=debug,rustls=debug");
    let logs = logs
        .unwrap_or_else(|| panic!("this test needs its own process to capture every log line (run it with nextest)"));

    let sentinel = format!("SENTINEL-{}-do-not-leak", std::process::id());
    // With Secret Manager's notifications on: messages flow through Pub/Sub too.
    let cluster = TestCluster::with_crds("sentinel").await;
    let options = OperatorOptions { notifications: Some(NotificationOptions::default()), ..OperatorOptions::default() };
    let operator = Operator::start_with(&cluster, options).await;
    let gcp = &operator.gcp;
    let api: Api<SecretRef> = cluster.api();
    let payload = json!({ "password": sentinel, "host": "db.example.com" }).to_string();
    gcp.add_version(PROJECT, "db", payload.as_bytes());
    gcp.set_secret_topics(PROJECT, "db", &[&topic_name()]).unwrap_or_else(|e| panic!("{e}"));

    // Success.
    create_synced_db(&api).await;

    // Missing property: the payload is read but cannot be mapped.
    api.patch(
        "db",
        &PatchParams::default(),
        &Patch::Merge(json!({ "spec": { "keys": [{ "key": "user", "property": "username" }] } })),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    wait_condition(&api, "db", ready().reason("InvalidPayload")).await;
    api.patch("db", &PatchParams::default(), &Patch::Merge(json!({ "spec": { "keys": null } })))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    wait_condition(&api, "db", ready().reason("Synced")).await;

    // A payload key that is no valid Secret key, and is itself the planted value: named by its
    // place only.
    let bad_key = json!({ format!("{sentinel} key"): "x", "host": "db.example.com" }).to_string();
    gcp.add_version(PROJECT, "db", bad_key.as_bytes());
    let message = wait_condition(&api, "db", ready().reason("InvalidPayload")).await.message(types::READY);
    assert!(message.contains("key #1 of 2"), "{message}"); // "SENTINEL..." sorts before "host"
    gcp.add_version(PROJECT, "db", payload.as_bytes());
    wait_condition(&api, "db", ready().reason("Synced")).await;

    // Wrong checksum.
    gcp.inject_fault(GcpFault {
        method: Some("secretmanager.versions.access".into()),
        wrong_checksum: true,
        ..GcpFault::default()
    });
    gcp.add_version(PROJECT, "db", payload.as_bytes());
    wait_condition(&api, "db", ready().reason("ChecksumMismatch")).await;
    gcp.clear_faults();
    wait_condition(&api, "db", ready().reason("Synced")).await;

    // Quota exceeded, until it is not.
    gcp.inject_fault(GcpFault {
        method: Some("secretmanager.versions.access".into()),
        status: Some(429),
        ..GcpFault::default()
    });
    gcp.add_version(PROJECT, "db", payload.as_bytes());
    wait_condition(&api, "db", ready().reason("QuotaExceeded")).await;
    gcp.clear_faults();
    wait_condition(&api, "db", ready().reason("Synced")).await;

    // Disabled newest version.
    let newest = gcp.add_version(PROJECT, "db", payload.as_bytes());
    gcp.set_version_state(PROJECT, "db", newest, VersionState::Disabled).unwrap_or_else(|e| panic!("{e}"));
    wait_condition(&api, "db", ready().reason("VersionDisabled")).await;

    // Identity: the same payload read as a ServiceAccount acting as a Google service account
    // (a Kubernetes token, a federated token and a service account token change hands), then
    // refused exchanges.
    let reader = gcp.create_service_account(PROJECT, "reader");
    let member = format!("serviceAccount:{PROJECT}.svc.id.goog[{}/app]", cluster.namespace);
    gcp.add_iam_binding(
        &format!("projects/{PROJECT}/serviceAccounts/{reader}"),
        "roles/iam.workloadIdentityUser",
        &member,
    );
    gcp.add_iam_binding(
        &format!("projects/{PROJECT}/secrets/db"),
        "roles/secretmanager.secretAccessor",
        &format!("serviceAccount:{reader}"),
    );
    let accounts: Api<ServiceAccount> = cluster.api();
    let annotations = json!({ "iam.gke.io/gcp-service-account": reader, "secureapi.dev/usable-by": "SecretRef" });
    let account = json!({ "metadata": { "name": "app", "annotations": annotations } });
    let account: ServiceAccount = serde_json::from_value(account).unwrap_or_else(|e| panic!("{e}"));
    accounts.create(&PostParams::default(), &account).await.unwrap_or_else(|e| panic!("{e}"));
    let spec = json!({ "secret": "db", "version": "1", "format": "json", "serviceAccountName": "app" });
    let object: SecretRef = serde_json::from_value(json!({
        "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecretRef", "metadata": { "name": "as-app" }, "spec": spec,
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    api.create(&PostParams::default(), &object).await.unwrap_or_else(|e| panic!("{e}"));
    wait_condition(&api, "as-app", ready().reason("Synced")).await;
    assert!(gcp.count("iamcredentials.serviceAccounts.generateAccessToken") >= 1, "the GSA path was taken");
    gcp.inject_fault(GcpFault { method: Some("sts.token".into()), status: Some(400), ..GcpFault::default() });
    let stranger = json!({ "metadata": { "name": "stranger", "annotations": { "secureapi.dev/usable-by": "*" } } });
    accounts
        .create(&PostParams::default(), &serde_json::from_value(stranger).unwrap_or_else(|e| panic!("{e}")))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let spec = json!({ "secret": "db", "serviceAccountName": "stranger" });
    let object: SecretRef = serde_json::from_value(json!({
        "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecretRef", "metadata": { "name": "as-stranger" }, "spec": spec,
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    api.create(&PostParams::default(), &object).await.unwrap_or_else(|e| panic!("{e}"));
    wait_condition(&api, "as-stranger", ready().reason("TokenExchangeFailed")).await;
    gcp.clear_faults();

    // API keys: one created, then rotated; their strings are secret material too.
    backend_service(&cluster).await;
    let key = json!({ "name": "client", "secretName": "client-key" });
    create_gateway(&cluster, "secure-api", json!({ "apiKeys": [key] })).await;
    let gateways: Api<GatewayConfig> = cluster.api();
    wait_condition(&gateways, "secure-api", condition(types::API_KEYS_READY).is("True", "ApiKeysReady")).await;
    let rotated = json!({ "spec": { "apiKeys": [{ "name": "client", "secretName": "client-key", "rotation": "2" }] } });
    gateways
        .patch("secure-api", &PatchParams::default(), &Patch::Merge(rotated))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    wait_for("the rotated key", DEADLINE, || async { (gcp.api_keys(PROJECT).len() == 2).then_some(()) }).await;
    wait_condition(&gateways, "secure-api", condition(types::API_KEYS_READY).is("True", "ApiKeysReady")).await;
    let key_strings: Vec<String> =
        gcp.api_keys(PROJECT).iter().filter_map(|k| gcp.key_string(PROJECT, &k.id)).collect();
    assert_eq!(key_strings.len(), 2);

    let status = format!("{}\n{}", listed(&api).await, listed(&gateways).await);
    let events = listed(&cluster.api::<Event>()).await;
    let metrics = operator.metrics.encode();
    let logs = logs.text();
    assert!(events.contains("Synced") && events.contains("ChecksumMismatch"), "events were recorded: {events}");
    assert!(logs.contains("sync failed"), "logs were captured");
    // The value as it sits in the Secret (base64) must not show up either.
    let encoded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &sentinel);
    assert!(logs.contains("TokenExchangeFailed"), "the refused exchange was logged");
    assert!(
        metrics.contains("secureapi_pubsub_messages_total{event_type=\"SECRET_VERSION_ADD\",outcome=\"queued\"}"),
        "{metrics}"
    );
    // Beyond the event type and the secret's name, nothing of a notification is shown: not its
    // data (the Secret or SecretVersion resource), raw or base64.
    let published = gcp.published();
    assert!(!published.is_empty(), "notifications were published");
    for message in &published {
        let data = String::from_utf8_lossy(&message.data).into_owned();
        let encoded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &message.data);
        for (what, text) in [("logs", &logs), ("events", &events), ("status", &status), ("metrics", &metrics)] {
            assert!(data.is_empty() || !text.contains(&data), "a notification's data leaked into {what}");
            assert!(encoded.is_empty() || !text.contains(&encoded), "a notification's base64 data leaked into {what}");
        }
    }
    // The operator's hash key (it lives in the operator's namespace: here the test's).
    let hash_key = cluster.api::<Secret>().get(SECRET_NAME).await.unwrap_or_else(|e| panic!("{e}"));
    let hash_key = hash_key.data.and_then(|d| d.get("key").map(|k| k.0.clone())).unwrap_or_default();
    assert_eq!(hash_key.len(), 32, "the operator keeps a 32-byte hash key");
    let hash_key_hex: String = hash_key.iter().map(|b| format!("{b:02x}")).collect();
    let hash_key_base64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &hash_key);
    for (what, text) in [("logs", &logs), ("events", &events), ("status", &status), ("metrics", &metrics)] {
        assert!(!text.contains(&hash_key_hex) && !text.contains(&hash_key_base64), "the hash key leaked into {what}");
        for key_string in &key_strings {
            let encoded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, key_string);
            assert!(!text.contains(key_string.as_str()), "an API key string leaked into {what}");
            assert!(!text.contains(&encoded), "a base64 API key string leaked into {what}");
        }
        assert!(!text.contains("SENTINEL"), "the payload leaked into {what}");
        assert!(!text.contains(&encoded), "the base64 payload leaked into {what}");
        // Google access tokens (`ya29.`) and Kubernetes ServiceAccount tokens (RS256 JWTs).
        assert!(!text.contains("ya29."), "a Google token leaked into {what}");
        assert!(!text.contains("eyJhbGciOiJSUzI1NiI"), "a ServiceAccount token leaked into {what}");
    }
}

/// The API server's refusal of a Secret write can quote the Secret: kube-apiserver repeats a key
/// it refuses (`data[k]: Invalid value: "k"`), and a policy webhook may print anything of it. The
/// controller sends no such key (it checks keys first), so the emulator's hooks answer as the API
/// server and a webhook would; a real cluster has neither refusal to offer and skips the test.
#[tokio::test]
async fn a_planted_value_in_an_api_refusal_never_appears_with_emulator_hooks() {
    let logs = Captured::install("trace,hyper=debug,hyper_util=debug,h2=debug,rustls=debug");
    let logs = logs
        .unwrap_or_else(|| panic!("this test needs its own process to capture every log line (run it with nextest)"));
    let sentinel = format!("SENTINEL-{}-do-not-leak", std::process::id());
    let Some((cluster, kube, operator)) = emulator_with_operator("sentinel-refusal").await else { return };
    let gcp = &operator.gcp;
    let api: Api<SecretRef> = cluster.api();
    gcp.add_version(PROJECT, "db", br#"{"password":"pw-1"}"#);
    create_synced_db(&api).await;

    let key_text = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";
    let invalid = format!(r#"Secret "db" is invalid: data[{sentinel} x]: Invalid value: "{sentinel} x": {key_text}"#);
    let denied =
        format!(r#"admission webhook "no-plain-secrets.example.com" denied the request: Secret db holds {sentinel}"#);
    let refusals = [
        (422, invalid, "Invalid", r#"Secret "db" is invalid: data[<redacted>]: Invalid value: <redacted>: a valid"#),
        (400, denied, "Rejected", r#"admission webhook "no-plain-secrets.example.com" denied the request: <redacted>"#),
    ];
    for (round, (code, refusal, reason, redacted)) in refusals.into_iter().enumerate() {
        kube.inject_fault(KubeFault::status("patch", "secrets", code).saying(refusal));
        gcp.add_version(PROJECT, "db", format!(r#"{{"password":"pw-{}"}}"#, round + 2).as_bytes());
        let message = wait_condition(&api, "db", ready().reason(reason)).await.message(types::READY);
        assert!(message.contains(redacted), "{message}");
        kube.clear_faults();
        wait_condition(&api, "db", ready().reason("Synced")).await;
    }

    let status = listed(&api).await;
    let events = listed(&cluster.api::<Event>()).await;
    let metrics = operator.metrics.encode();
    let logs = logs.text();
    assert!(events.contains("Invalid") && events.contains("Rejected"), "both refusals were recorded: {events}");
    assert!(logs.contains("sync failed"), "logs were captured");
    for (what, text) in [("logs", &logs), ("events", &events), ("status", &status), ("metrics", &metrics)] {
        let lines: Vec<&str> = text.lines().filter(|l| l.contains("SENTINEL")).collect();
        assert!(lines.is_empty(), "the refused key leaked into {what}: {lines:#?}");
    }
}
