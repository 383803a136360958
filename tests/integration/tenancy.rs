//! Tenant isolation: what a tenant who may create only our three kinds in one namespace can and
//! cannot do. Each test is an attack that worked once; on the emulator and a real cluster alike.

use crate::support::cluster::TestCluster;
use crate::support::conditions::{Conditioned, ready, wait_condition};
use crate::support::operator::{NotificationOptions, Operator, OperatorOptions, TOPIC, cluster_with_operator};
use crate::support::wait::{DEADLINE, wait_for};
use crate::support::{PROJECT, principal};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Secret, Service, ServiceAccount};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use secure_api_operator::api::conditions::types;
use secure_api_operator::api::secret_ref::RESERVED_KEYS_MESSAGE;
use secure_api_operator::api::{GatewayConfig, SecretRef, SecureApiService};
use secure_api_testbed::emulator::gcp::GcpEmulator;
use serde_json::{Value, json};

const ACCESS: &str = "secretmanager.versions.access";
const ACCESSOR: &str = "roles/secretmanager.secretAccessor";

fn object<K: serde::de::DeserializeOwned>(value: Value) -> K {
    serde_json::from_value(value).unwrap_or_else(|e| panic!("object: {e}"))
}

/// A SecureApiService named like a Service that exists, and another naming a ServiceAccount that
/// exists: neither object is patched or adopted (force-applied once, they gained our owner
/// reference and were garbage-collected with the SecureApiService).
#[tokio::test]
async fn a_secure_api_service_never_adopts_a_service_or_service_account_it_did_not_create() {
    let (cluster, _operator) = cluster_with_operator("tenancy-foreign-children").await;
    let services: Api<Service> = cluster.api();
    let accounts: Api<ServiceAccount> = cluster.api();
    let theirs: Service = object(json!({
        "metadata": { "name": "web", "labels": { "team": "a" } },
        "spec": { "selector": { "app": "team-a-web" }, "ports": [{ "port": 443, "targetPort": 8443 }] },
    }));
    let theirs = services.create(&PostParams::default(), &theirs).await.unwrap_or_else(|e| panic!("{e}"));
    let deployer: ServiceAccount = object(json!({
        "metadata": {
            "name": "deployer",
            "annotations": { "iam.gke.io/gcp-service-account": "deployer@team-a.iam.gserviceaccount.com" },
        },
    }));
    let deployer = accounts.create(&PostParams::default(), &deployer).await.unwrap_or_else(|e| panic!("{e}"));

    let tenants: Api<SecureApiService> = cluster.api();
    let spec = |account: Option<&str>| {
        let mut spec = json!({ "image": "example.com/api:1", "port": 8080, "replicas": 1 });
        if let Some(account) = account {
            spec["serviceAccount"] =
                json!({ "name": account, "gcpServiceAccount": "tenant-b@b.iam.gserviceaccount.com" });
        }
        spec
    };
    for (name, account) in [("web", None), ("other", Some("deployer"))] {
        let service: SecureApiService = object(json!({
            "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecureApiService",
            "metadata": { "name": name }, "spec": spec(account),
        }));
        tenants.create(&PostParams::default(), &service).await.unwrap_or_else(|e| panic!("{e}"));
    }
    let message = wait_condition(&tenants, "web", ready().reason("OwnershipConflict")).await.message(types::READY);
    assert!(message.contains("Service web"), "{message}");
    let message = wait_condition(&tenants, "other", ready().reason("OwnershipConflict")).await.message(types::READY);
    assert!(message.contains("ServiceAccount deployer"), "{message}");

    // Not one write: the same resourceVersion, so the same bytes, and no owner reference of ours.
    let unchanged = |what: &str, before: Option<String>, after: Option<String>| {
        assert_eq!(before, after, "{what} was written");
    };
    let service_now = services.get("web").await.unwrap_or_else(|e| panic!("{e}"));
    unchanged("Service web", theirs.metadata.resource_version.clone(), service_now.metadata.resource_version);
    let account_now = accounts.get("deployer").await.unwrap_or_else(|e| panic!("{e}"));
    unchanged(
        "ServiceAccount deployer",
        deployer.metadata.resource_version.clone(),
        account_now.metadata.resource_version,
    );

    // Deleting the SecureApiServices takes their own children along, and nothing else.
    for name in ["web", "other"] {
        tenants.delete(name, &DeleteParams::default()).await.unwrap_or_else(|e| panic!("{e}"));
    }
    wait_for("both SecureApiServices gone", DEADLINE, || async {
        let left = tenants.list(&Default::default()).await.ok()?.items.len();
        (left == 0).then_some(())
    })
    .await;
    wait_for("the tenant's own Deployment web garbage-collected", DEADLINE, || async {
        let deployments: Api<Deployment> = cluster.api();
        deployments.get_opt("web").await.ok()?.is_none().then_some(())
    })
    .await;
    let service_now = services.get("web").await.unwrap_or_else(|e| panic!("Service web: {e}"));
    unchanged("Service web", theirs.metadata.resource_version, service_now.metadata.resource_version);
    let account_now = accounts.get("deployer").await.unwrap_or_else(|e| panic!("ServiceAccount deployer: {e}"));
    unchanged("ServiceAccount deployer", deployer.metadata.resource_version, account_now.metadata.resource_version);
}

/// Mutating API Gateway calls so far (creates, patches, deletes).
fn gateway_writes(gcp: &GcpEmulator) -> u64 {
    let counts = gcp.counts();
    let writes =
        counts.iter().filter(|(m, _)| m.starts_with("apigateway.") && !m.ends_with(".get") && !m.ends_with(".list"));
    writes.map(|(_, n)| n).sum()
}

/// team-b names team-a's API and gateway ids: nothing of team-a's is moved, re-pointed or
/// deleted (once, team-b's route to its own backend took team-a's gateway and callers' API keys,
/// and deleting team-b's GatewayConfig deleted team-a's gateway, configs and API).
#[tokio::test]
async fn a_gateway_config_naming_another_namespaces_api_and_gateway_takes_and_deletes_nothing() {
    let team_a = TestCluster::with_crds("tenancy-gw-a").await;
    let team_b = team_a.another_namespace("tenancy-gw-b").await;
    let gcp = GcpEmulator::new();
    let options = || OperatorOptions { gcp: Some(gcp.clone()), ..OperatorOptions::default() };
    let _operator_a = Operator::start_with(&team_a, options()).await;
    let _operator_b = Operator::start_with(&team_b, options()).await;
    let gateway = |backend: &str, keys: Value| -> GatewayConfig {
        object(json!({
            "apiVersion": "secureapi.dev/v1alpha1", "kind": "GatewayConfig", "metadata": { "name": "orders" },
            "spec": {
                "projectId": PROJECT, "location": "us-central1", "apiId": "orders", "gatewayId": "orders",
                "auth": { "apiKey": { "in": "query", "name": "key" } },
                "routes": [{ "path": "/config", "auth": "apiKey", "backend": { "address": backend } }],
                "apiKeys": keys,
            },
        }))
    };
    let (a, b): (Api<GatewayConfig>, Api<GatewayConfig>) = (team_a.api(), team_b.api());
    let team_a_keys = json!([{ "name": "client", "secretName": "orders-key" }]);
    let team_a_gateway = gateway("https://team-a.example.com", team_a_keys.clone());
    a.create(&PostParams::default(), &team_a_gateway).await.unwrap_or_else(|e| panic!("{e}"));
    wait_condition(&a, "orders", ready().status("True")).await;
    let served = gcp.gateway(PROJECT, "us-central1", "orders");
    let configs = gcp.configs(PROJECT, "orders");
    let writes = gateway_writes(&gcp);

    let key_calls = |method: &str| gcp.count(method);
    let keys_made = key_calls("apikeys.keys.create");
    // Even its API key has team-a's name: the key ids of two namespaces never meet.
    let attack = gateway("https://attacker.example.com", team_a_keys);
    b.create(&PostParams::default(), &attack).await.unwrap_or_else(|e| panic!("{e}"));
    let message = wait_condition(&b, "orders", ready().reason("OwnershipConflict")).await.message(types::READY);
    assert!(message.contains(&format!("API projects/{PROJECT}/locations/global/apis/orders")), "{message}");
    assert!(!message.contains(&team_a.namespace), "the other owner is not named: {message}");
    b.delete("orders", &DeleteParams::default()).await.unwrap_or_else(|e| panic!("{e}"));
    wait_for("team-b's GatewayConfig gone", DEADLINE, || async {
        b.get_opt("orders").await.ok()?.is_none().then_some(())
    })
    .await;

    assert_eq!(gateway_writes(&gcp), writes, "no create, move or delete in team-a's API Gateway: {:?}", gcp.counts());
    assert_eq!(gcp.gateway(PROJECT, "us-central1", "orders"), served, "team-a's gateway serves what it served");
    assert_eq!(gcp.configs(PROJECT, "orders"), configs);
    assert!(gcp.deletions().is_empty(), "{:?}", gcp.deletions());
    assert_eq!(key_calls("apikeys.keys.create"), keys_made, "no API key made for team-b");
    assert_eq!(key_calls("apikeys.keys.delete"), 0, "team-a's API key stays");
    let team_a_now = a.get("orders").await.unwrap_or_else(|e| panic!("team-a's gateway: {e}"));
    assert!(team_a_now.condition(types::READY).is_true(types::READY), "team-a stays Ready");
}

fn secret_ref(name: &str, target: Value) -> SecretRef {
    serde_json::from_value(json!({
        "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecretRef", "metadata": { "name": name },
        "spec": { "secret": "db", "target": target },
    }))
    .unwrap_or_else(|e| panic!("secretref {name}: {e}"))
}

/// The API server's 422 message for creating `object`; fails the test if it is accepted.
async fn refusal(api: &Api<SecretRef>, object: &SecretRef) -> String {
    match api.create(&PostParams::default(), object).await {
        Err(kube::Error::Api(status)) if status.code == 422 => status.message,
        other => panic!("expected a 422, got {other:?}"),
    }
}

/// A `kubernetes.io/service-account-token` Secret naming a ServiceAccount is filled by Kubernetes
/// with a long-lived token of that account: a tenant could mint one for any ServiceAccount of the
/// namespace through the operator (ESO's GHSA-fq7h-9x26-6j22). The API server refuses the type,
/// and the annotation on its own.
#[tokio::test]
async fn a_secretref_cannot_mint_a_service_account_token() {
    let (cluster, _operator) = cluster_with_operator("tenancy-sa-token").await;
    let accounts: Api<ServiceAccount> = cluster.api();
    let deployer: ServiceAccount =
        serde_json::from_value(json!({ "metadata": { "name": "deployer" } })).unwrap_or_else(|e| panic!("{e}"));
    accounts.create(&PostParams::default(), &deployer).await.unwrap_or_else(|e| panic!("{e}"));
    let api: Api<SecretRef> = cluster.api();
    let token_annotation = json!({ "kubernetes.io/service-account.name": "deployer" });

    let minting = secret_ref(
        "deployer-token",
        json!({ "type": "kubernetes.io/service-account-token", "annotations": token_annotation }),
    );
    let message = refusal(&api, &minting).await;
    assert!(message.contains("spec.target.type: Unsupported value"), "{message}");

    let annotated = secret_ref("deployer-annotated", json!({ "annotations": token_annotation }));
    let message = refusal(&api, &annotated).await;
    assert!(message.contains(RESERVED_KEYS_MESSAGE), "{message}");

    let secrets: Api<Secret> = cluster.api();
    for name in ["deployer-token", "deployer-annotated"] {
        assert!(api.get_opt(name).await.unwrap_or_else(|e| panic!("{e}")).is_none(), "SecretRef {name}");
        assert!(secrets.get_opt(name).await.unwrap_or_else(|e| panic!("{e}")).is_none(), "Secret {name}");
    }
}

/// A series of `/metrics`, summed over its label sets (`name{...} value` and `name value`).
fn metric_sum(text: &str, name: &str) -> f64 {
    let series = text.lines().filter(|line| line.starts_with(name) && !line.starts_with('#'));
    let matching = series.filter(|line| line[name.len()..].starts_with([' ', '{']));
    matching.filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok()).sum()
}

/// Whoever may publish to the notifications topic can forge Secret Manager's messages: a flood of
/// them naming a made-up version costs one read of the secret, and no rotation stays pending
/// (once, each forced a read, bypassed read sharing, and left `secureapi_rotations_pending`
/// stuck, so the alert fired).
#[tokio::test]
async fn a_forged_notification_flood_costs_one_read_and_leaves_no_pending_rotation() {
    const BATCHES: usize = 5;
    const PER_BATCH: usize = 10;
    let cluster = TestCluster::with_crds("tenancy-forged").await;
    let notifications = Some(NotificationOptions::default());
    let operator =
        Operator::start_with(&cluster, OperatorOptions { notifications, ..OperatorOptions::default() }).await;
    operator.gcp.add_version(PROJECT, "db", b"s3cr3t");
    let refs: Api<SecretRef> = cluster.api();
    let object: SecretRef = object(json!({
        "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecretRef", "metadata": { "name": "db" },
        "spec": { "secret": "db" },
    }));
    refs.create(&PostParams::default(), &object).await.unwrap_or_else(|e| panic!("{e}"));
    wait_for("db synced", DEADLINE, || async {
        let status = refs.get("db").await.ok()?.status?;
        (status.synced_version.as_deref() == Some("1")).then_some(())
    })
    .await;
    let reads = operator.gcp.count_for(ACCESS, &format!("projects/{PROJECT}/secrets/db/"));
    let handled = |text: &str| metric_sum(text, "secureapi_pubsub_messages_total");
    let before = handled(&operator.metrics.encode());

    // In batches, each once the one before was handled: a flood that goes on, not one burst.
    let secret = format!("projects/{PROJECT}/secrets/db");
    let forged = json!({ "attributes": {
        "eventType": "SECRET_VERSION_ADD", "secretId": secret, "versionId": format!("{secret}/versions/99"),
        "dataFormat": "JSON_API_V1",
    }});
    let url = format!("{}/v1/projects/{PROJECT}/topics/{TOPIC}:publish", operator.gcp_url());
    for batch in 1..=BATCHES {
        let messages = vec![forged.clone(); PER_BATCH];
        let answer = reqwest::Client::new().post(&url).json(&json!({ "messages": messages })).send().await;
        let answer = answer.unwrap_or_else(|e| panic!("publishing: {e}"));
        assert!(answer.status().is_success(), "publishing: {}", answer.status());
        wait_for(&format!("batch {batch} handled"), DEADLINE, || async {
            let done = handled(&operator.metrics.encode()) >= before + (batch * PER_BATCH) as f64;
            done.then_some(())
        })
        .await;
    }
    wait_for("no rotation pending", DEADLINE, || async {
        (metric_sum(&operator.metrics.encode(), "secureapi_rotations_pending") == 0.0).then_some(())
    })
    .await;
    let read = operator.gcp.count_for(ACCESS, &format!("projects/{PROJECT}/secrets/db/")) - reads;
    assert!(read <= 1, "{read} reads for {} forged notifications", BATCHES * PER_BATCH);
    let status = refs.get("db").await.unwrap_or_else(|e| panic!("{e}")).status.unwrap_or_default();
    assert_eq!(status.synced_version.as_deref(), Some("1"), "nothing moved");
}

/// Sets the opt-in annotation of ServiceAccount `name` to `usable_by`.
async fn opt_in(accounts: &Api<ServiceAccount>, name: &str, usable_by: &str) {
    let patch = json!({ "metadata": { "annotations": { USABLE_BY: usable_by } } });
    accounts.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap_or_else(|e| panic!("{e}"));
}

const USABLE_BY: &str = "secureapi.dev/usable-by";

/// A tenant who may create SecretRefs names a ServiceAccount of the namespace that was never
/// meant for them (`deployer`, whose Google identity may read `db`): it serves no SecretRef, and
/// no token of it is even asked for, until whoever administers ServiceAccounts opts it in for
/// SecretRefs (an opt-in for GatewayConfigs is not one). The SecretRef then syncs at its slow
/// retry (a ServiceAccount's change wakes no SecretRef); withdrawn, the opt-in stops serving at
/// the next read although the token is still cached.
#[tokio::test]
async fn a_service_account_without_opt_in_serves_no_secretref_with_emulator_hooks() {
    let cluster = TestCluster::with_crds("tenancy-opt-in").await;
    let operator =
        Operator::start_with(&cluster, OperatorOptions { operator_identity: false, ..OperatorOptions::default() })
            .await;
    operator.gcp.add_version(PROJECT, "db", b"s3cr3t");
    let deployer = principal(&cluster.namespace, "deployer");
    operator.gcp.add_iam_binding(&format!("projects/{PROJECT}/secrets/db"), ACCESSOR, &deployer);
    let accounts: Api<ServiceAccount> = cluster.api();
    let account = object(json!({ "metadata": { "name": "deployer", "annotations": { USABLE_BY: "GatewayConfig" } } }));
    accounts.create(&PostParams::default(), &account).await.unwrap_or_else(|e| panic!("{e}"));
    let token_requests = || cluster.hooks().map(|kube| kube.count("create", "serviceaccounts/token"));
    let before = token_requests();

    let refs: Api<SecretRef> = cluster.api();
    let borrowing: SecretRef = object(json!({
        "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecretRef", "metadata": { "name": "borrowing" },
        "spec": { "secret": "db", "serviceAccountName": "deployer", "refreshInterval": "1s" },
    }));
    refs.create(&PostParams::default(), &borrowing).await.unwrap_or_else(|e| panic!("{e}"));
    let message =
        wait_condition(&refs, "borrowing", ready().reason("ServiceAccountNotOptedIn")).await.message(types::READY);
    let account_name = format!("ServiceAccount {}/deployer", cluster.namespace);
    assert!(message.contains(&account_name) && message.contains(USABLE_BY), "{message}");
    let secrets: Api<Secret> = cluster.api();
    assert!(secrets.get_opt("borrowing").await.unwrap_or_else(|e| panic!("{e}")).is_none(), "no Secret written");
    assert_eq!(token_requests(), before, "no TokenRequest for a ServiceAccount that did not opt in");
    assert_eq!(operator.gcp.count_for(ACCESS, &format!("projects/{PROJECT}/secrets/db/")), 0, "nothing was read");

    opt_in(&accounts, "deployer", " GatewayConfig , SecretRef ").await;
    wait_condition(&refs, "borrowing", ready().reason("Synced")).await;
    let synced = token_requests();

    opt_in(&accounts, "deployer", "GatewayConfig").await;
    let message =
        wait_condition(&refs, "borrowing", ready().reason("ServiceAccountNotOptedIn")).await.message(types::READY);
    assert!(message.contains(&account_name), "{message}");
    assert_eq!(token_requests(), synced, "a withdrawn opt-in asks for no token either");
}

/// SHA-256 of `{key: value}` framed as content hashes were before they were keyed: what an
/// attacker who reads a status or a Deployment can compute for every guess.
fn unkeyed_hash(key: &str, value: &str) -> String {
    let mut bytes = vec![];
    for part in [key.as_bytes(), value.as_bytes()] {
        bytes.extend_from_slice(&(part.len() as u64).to_be_bytes());
        bytes.extend_from_slice(part);
    }
    ring::digest::digest(&ring::digest::SHA256, &bytes).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// A 4-digit PIN was recovered from `status.contentHash` in 0.01 s, and from the snapshot's name in
/// any Deployment (the built-in `view` role): every hash is now keyed with the operator's secret.
#[tokio::test]
async fn a_pin_cannot_be_recovered_from_status_or_snapshot_names() {
    let (cluster, operator) = cluster_with_operator("tenancy-pin").await;
    operator.gcp.add_version(PROJECT, "pin", br#"{"pin":"4821"}"#);
    let refs: Api<SecretRef> = cluster.api();
    let pin: SecretRef = object(json!({
        "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecretRef", "metadata": { "name": "pin" },
        "spec": { "secret": "pin", "format": "json" },
    }));
    refs.create(&PostParams::default(), &pin).await.unwrap_or_else(|e| panic!("{e}"));
    let services: Api<SecureApiService> = cluster.api();
    let service: SecureApiService = object(json!({
        "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecureApiService", "metadata": { "name": "vault" },
        "spec": { "image": "example.com/vault:1", "secretEnv": [{ "name": "PIN", "secretRef": "pin", "key": "pin" }] },
    }));
    services.create(&PostParams::default(), &service).await.unwrap_or_else(|e| panic!("{e}"));
    let snapshot = wait_for("the service's first revision", DEADLINE, || async {
        let status = services.get("vault").await.ok()?.status?;
        status.history.first()?.snapshots.first().cloned()
    })
    .await;
    let status = refs.get("pin").await.ok().and_then(|r| r.status).unwrap_or_default();
    let recorded = status.content_hash.unwrap_or_default();
    assert_eq!(recorded.len(), 64, "a hash is recorded: {recorded}");
    let named = snapshot.rsplit('-').next().unwrap_or_default().to_owned();
    assert_eq!(named.len(), 10, "the snapshot is named after the hash: {snapshot}");

    let found = (0..10_000).map(|n| format!("{n:04}")).find(|guess| {
        let hash = unkeyed_hash("pin", guess);
        hash == recorded || hash.starts_with(&named)
    });
    assert_eq!(found, None, "the PIN follows from what anyone may read");
}
