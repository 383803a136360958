//! The playground's stand-in for the seed's API: fed from the current revision's env and files,
//! reached through the emulated API Gateway at the service's external URL, and showing a rotation
//! of api-config-db as a new revision with the new database host.

use crate::support::wait::wait_for;
use crate::support::{PROJECT, principal};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use secure_api_operator::api::{GatewayConfig, SecureApiService};
use secure_api_testbed::dev::examples;
use secure_api_testbed::dev::playground::{Playground, PlaygroundOptions, SEED_NAMESPACE, SEED_SERVICE};
use secure_api_testbed::dev::standin::StandIn;
use secure_api_testbed::emulator::kube::KubeEmulator;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;

/// Generous: the seed scenario takes a few seconds, a loaded CI machine more.
const SLOW: Duration = Duration::from_secs(90);
const API_KEY: &str = "standin-key";

/// `GET path` at `addr` with `Host: host`: status and JSON body, `None` when nothing answers.
async fn get(addr: SocketAddr, host: &str, path: &str, bearer: Option<&str>) -> Option<(StatusCode, Value)> {
    let stream = TcpStream::connect(addr).await.ok()?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.ok()?;
    tokio::spawn(connection);
    let mut request = Request::get(path).header("host", host);
    if let Some(token) = bearer {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = sender.send_request(request.body(Full::new(Bytes::new())).ok()?).await.ok()?;
    let status = response.status();
    let body = response.into_body().collect().await.ok()?.to_bytes();
    Some((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
}

fn db_payload(host: &str) -> Vec<u8> {
    json!({"host": host, "port": 5432, "username": "api_user", "password": "pw-sentinel"}).to_string().into_bytes()
}

/// The seed's secrets and Google IAM, as the demo's first two steps make them.
fn seed_google_cloud(playground: &Playground) {
    let gcp = &playground.gcp;
    let keys = json!({"external_api_key": API_KEY, "jwt_secret": "j", "encryption_key": "e"}).to_string();
    let config = json!({"debug_mode": false, "rate_limit": 1000, "cache_ttl": 3600, "log_level": "INFO"}).to_string();
    let topic = playground.topic();
    let gsa = gcp.create_service_account(PROJECT, "secure-api-sa");
    for (id, payload) in [
        ("api-config-db", db_payload("db.example.com")),
        ("api-config-keys", keys.into()),
        ("api-config-config", config.into()),
    ] {
        gcp.add_version(PROJECT, id, &payload);
        gcp.set_secret_topics(PROJECT, id, &[&topic]).unwrap_or_else(|e| panic!("topics of {id}: {e:?}"));
        let secret = format!("projects/{PROJECT}/secrets/{id}");
        gcp.add_iam_binding(&secret, "roles/secretmanager.secretAccessor", &format!("serviceAccount:{gsa}"));
    }
    let ksa = format!("serviceAccount:{PROJECT}.svc.id.goog[{SEED_NAMESPACE}/{SEED_SERVICE}]");
    gcp.add_iam_binding(&format!("projects/{PROJECT}/serviceAccounts/{gsa}"), "roles/iam.workloadIdentityUser", &ksa);
    let admin = principal(SEED_NAMESPACE, "gateway-admin");
    for role in ["roles/apigateway.admin", "roles/serviceusage.serviceUsageAdmin", "roles/serviceusage.apiKeysAdmin"] {
        gcp.add_iam_binding(&format!("projects/{PROJECT}"), role, &admin);
    }
}

async fn start() -> (tempfile::TempDir, Playground) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let options = PlaygroundOptions {
        kube_listen: ([127, 0, 0, 1], 0).into(),
        gcp_listen: ([127, 0, 0, 1], 0).into(),
        dir: dir.path().to_path_buf(),
        gcp_project: PROJECT.into(),
        notifications: true,
    };
    let playground = Playground::start(&options).await.unwrap_or_else(|e| panic!("the playground did not start: {e}"));
    (dir, playground)
}

#[tokio::test]
async fn the_seeds_gateway_answers_from_the_standin_and_shows_a_rotation() {
    let (_dir, playground) = start().await;
    seed_google_cloud(&playground);
    examples::apply(&playground.client(), SEED_NAMESPACE).await.unwrap_or_else(|e| panic!("{e}"));
    let external = playground.backend_routed(SLOW).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(external.starts_with("http://203.0.113."), "the LoadBalancer's address: {external}");

    let client = playground.client();
    let gateways: Api<GatewayConfig> = Api::namespaced(client.clone(), SEED_NAMESPACE);
    let gateway_url =
        wait_for("the gateway's URL", SLOW, || async { gateways.get("secure-api").await.ok()?.status?.gateway_url })
            .await;
    let host = gateway_url.trim_start_matches("https://").trim_end_matches('/').to_owned();
    let front = playground.gcp_addr();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), SEED_NAMESPACE);
    let key = wait_for("the gateway's API key in its Secret", SLOW, || async {
        let data = secrets.get("secure-api-key").await.ok()?.data?;
        Some(String::from_utf8_lossy(&data.get("api-key")?.0).into_owned())
    })
    .await;
    let services: Api<SecureApiService> = Api::namespaced(client, SEED_NAMESPACE);
    let revision = || async { services.get(SEED_SERVICE).await.ok()?.status?.revision };

    let health = wait_for("/health through the gateway", SLOW, || async {
        get(front, &host, "/health", None).await.filter(|(status, _)| *status == StatusCode::OK)
    })
    .await;
    assert_eq!(health.1["status"], "healthy");
    let before = revision().await.unwrap_or_default();
    assert_eq!(health.1["revision"], before.as_str(), "{health:?}");
    let database = format!("/database/status?key={key}");
    let (status, body) = get(front, &host, &database, None).await.unwrap_or_else(|| panic!("no answer"));
    assert_eq!(
        (status, body["host"].clone(), body["port"].clone()),
        (StatusCode::OK, json!("db.example.com"), json!(5432))
    );
    assert!(!body.to_string().contains("pw-sentinel"), "{body}");
    let data = format!("/api/data?key={key}");
    let (status, _) = get(front, &host, &data, Some(API_KEY)).await.unwrap_or_else(|| panic!("no answer"));
    assert_eq!(status, StatusCode::OK, "the backend's Bearer check passes with external_api_key");
    let (status, _) = get(front, &host, &data, Some("wrong")).await.unwrap_or_else(|| panic!("no answer"));
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    playground.gcp.add_version(PROJECT, "api-config-db", &db_payload("db2.example.com"));
    let rotated = wait_for("the new revision's database host through the gateway", SLOW, || async {
        let (status, body) = get(front, &host, &database, None).await?;
        (status == StatusCode::OK && body["host"] == "db2.example.com").then_some(body)
    })
    .await;
    let after = revision().await.unwrap_or_default();
    assert_ne!(after, before, "a rotation is a new revision");
    assert_eq!(rotated["revision"], after.as_str(), "{rotated}");
    playground.stop().await;
}

/// A revision as the operator renders one: the Deployment stamped with it, env from a snapshot.
fn deployment(revision: &str, db_snapshot: &str) -> Deployment {
    let deployment = json!({
        "metadata": {"name": SEED_SERVICE, "annotations": {"secureapi.dev/revision": revision}},
        "spec": {
            "selector": {"matchLabels": {"app": "a"}},
            "template": {
                "metadata": {"labels": {"app": "a"}},
                "spec": {
                    "containers": [{"name": "api", "image": "example.com/secure-api:1.0",
                        "env": [{"name": "DB_HOST", "valueFrom": {"secretKeyRef": {"name": db_snapshot, "key": "host"}}}],
                        "volumeMounts": [{"name": "keys", "mountPath": "/secrets/keys", "readOnly": true}]}],
                    "volumes": [{"name": "keys", "secret": {"secretName": "keys-1"}}],
                },
            },
        },
    });
    serde_json::from_value(deployment).unwrap_or_else(|e| panic!("{e}"))
}

fn secret(name: &str, key: &str, value: &str) -> Secret {
    let secret = json!({"metadata": {"name": name}, "immutable": true, "stringData": {key: value}});
    serde_json::from_value(secret).unwrap_or_else(|e| panic!("{e}"))
}

/// Without the operator: hand-made revisions on the Kubernetes emulator, served by a stand-in.
#[tokio::test]
async fn the_standin_serves_the_revision_its_status_names_from_that_revisions_secrets() {
    let kube = KubeEmulator::new();
    let client = kube.client();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in secure_api_operator::crdgen::all() {
        crds.create(&PostParams::default(), &crd).await.unwrap_or_else(|e| panic!("CRD: {e}"));
    }
    let standin = StandIn::start(client.clone(), SEED_NAMESPACE, SEED_SERVICE).await.unwrap_or_else(|e| panic!("{e}"));
    let addr = standin.addr();
    let answer = |path: &'static str| async move {
        get(addr, "standin", path, None).await.unwrap_or_else(|| panic!("no answer"))
    };
    assert_eq!(answer("/health").await.0, StatusCode::SERVICE_UNAVAILABLE, "no SecureApiService yet");
    assert_eq!(answer("/nope").await.0, StatusCode::NOT_FOUND);

    let services: Api<SecureApiService> = Api::namespaced(client.clone(), SEED_NAMESPACE);
    let service = json!({"apiVersion": "secureapi.dev/v1alpha1", "kind": "SecureApiService",
        "metadata": {"name": SEED_SERVICE}, "spec": {"image": "example.com/secure-api:1.0", "port": 8080}});
    let service: SecureApiService = serde_json::from_value(service).unwrap_or_else(|e| panic!("{e}"));
    services.create(&PostParams::default(), &service).await.unwrap_or_else(|e| panic!("{e}"));
    let (status, body) = answer("/health").await;
    assert_eq!((status, body["error"].clone()), (StatusCode::SERVICE_UNAVAILABLE, json!("no revision is current yet")));

    let secrets: Api<Secret> = Api::namespaced(client.clone(), SEED_NAMESPACE);
    for made in [
        secret("db-1", "host", "db1.example.com"),
        secret("db-2", "host", "db2.example.com"),
        secret("keys-1", "external_api_key", "k"),
    ] {
        secrets.create(&PostParams::default(), &made).await.unwrap_or_else(|e| panic!("{e}"));
    }
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), SEED_NAMESPACE);
    let current = |revision: &'static str| {
        let services = services.clone();
        async move {
            let status = Patch::Merge(json!({"status": {"revision": revision}}));
            services
                .patch_status(SEED_SERVICE, &PatchParams::default(), &status)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
    };
    deployments
        .create(&PostParams::default(), &deployment("secure-api-1", "db-1"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    current("secure-api-1").await;
    let (status, body) = answer("/database/status").await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"host": "db1.example.com", "port": null, "revision": "secure-api-1"}))
    );

    // The status names a revision the Deployment does not run yet: no answer from the old one.
    current("secure-api-2").await;
    assert_eq!(answer("/health").await.0, StatusCode::SERVICE_UNAVAILABLE);
    let replace = Patch::Apply(deployment("secure-api-2", "db-2"));
    deployments
        .patch(SEED_SERVICE, &PatchParams::apply("test").force(), &replace)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (status, body) = answer("/database/status").await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"host": "db2.example.com", "port": null, "revision": "secure-api-2"}))
    );
    standin.stop().await;
}
